DROP VIEW sales.vw_orders
