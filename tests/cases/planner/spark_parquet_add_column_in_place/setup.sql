INSERT INTO sales.orders VALUES (1, 'NEW', 250.00), (2, NULL, 20.00)
