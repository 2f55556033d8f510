CREATE TABLE sales.customers (id INTEGER, email VARCHAR)
