-- warehouse_set_dims.sql: record the dimensions a new database was created for (run once, right
-- after sql/schema.sql created the tables).
-- Parameters: $d_state, $d_action (INTEGER, positive).
INSERT INTO pipeline_meta VALUES
    ('d_state', CAST($d_state AS VARCHAR)),
    ('d_action', CAST($d_action AS VARCHAR));
