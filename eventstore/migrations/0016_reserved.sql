-- Number 0016 belongs to a change made alongside attachments (0017); migrations are numbered without gaps, so
-- it stands here as a no-op until that change takes its place.
SELECT 1;
