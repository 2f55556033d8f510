INSERT INTO sales.orders VALUES (1, 'Ada', 250.00), (2, 'Bob', NULL), (3, NULL, 20.00);
INSERT INTO sales.orders_archive VALUES (7, 'Cy'), (8, 'Di')
