CREATE TABLE sales.customer_notes (id BIGINT NOT NULL, note VARCHAR);
