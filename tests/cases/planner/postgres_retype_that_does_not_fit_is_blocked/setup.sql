INSERT INTO sales.orders VALUES (1, 'Ada', 250.00), (2, 'Bob', NULL), (3, NULL, 20.00)
