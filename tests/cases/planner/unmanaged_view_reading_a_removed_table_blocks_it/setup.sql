INSERT INTO sales.orders VALUES (1, 'Ada', 250.00), (2, 'Bob', NULL), (3, NULL, 20.00);
CREATE SCHEMA reports;
CREATE VIEW reports.v_orders AS SELECT id, amount FROM sales.orders
