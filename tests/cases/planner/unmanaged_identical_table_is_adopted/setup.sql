CREATE TABLE sales.customers (id BIGINT NOT NULL, name VARCHAR, PRIMARY KEY (id))
