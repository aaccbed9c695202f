-- The case list sorted by due date (soonest first; a case with no running deadline last) or by receipt (newest
-- first, a case with no receipt such as a plan task last; or oldest first, those first), paged by (key, case_id) as the newest-first order
-- is. The same expression in the index and in the statement (`api.queries.SORTS`): a sentinel for "none", so
-- that the keyset comparison never meets a NULL.
CREATE INDEX cases_due_order_idx ON cases ((coalesce(due_at, 'infinity'::timestamptz)), case_id);
CREATE INDEX cases_received_order_idx ON cases ((coalesce(received_at, '-infinity'::timestamptz)), case_id);
