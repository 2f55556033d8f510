INSERT INTO sales.orders VALUES (1, 'Ada', 250.00), (2, 'Bob', NULL);
CREATE INDEX ix_orders_customer ON sales.orders (customer)
