CREATE OR REPLACE VIEW sales.vw_customer_segmentation AS SELECT 1 AS hacked;
