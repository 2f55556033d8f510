ALTER TABLE sales.customer_master ADD COLUMN note VARCHAR;
