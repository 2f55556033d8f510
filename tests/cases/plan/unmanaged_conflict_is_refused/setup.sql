CREATE TABLE sales.customer_notes (id INTEGER, body VARCHAR);
