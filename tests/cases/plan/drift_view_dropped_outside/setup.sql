DROP VIEW sales.vw_customer_segmentation;
