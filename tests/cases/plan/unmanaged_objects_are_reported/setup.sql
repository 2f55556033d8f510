CREATE TABLE sales.scratch (x INT); CREATE VIEW sales.vw_scratch AS SELECT * FROM sales.scratch;
