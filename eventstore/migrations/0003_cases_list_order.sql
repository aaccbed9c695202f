-- The case list pages newest first on (created_at, case_id), which never change once written.
CREATE INDEX cases_created_order_idx ON cases (created_at DESC, case_id DESC);
