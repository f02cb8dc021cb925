-- Where the store's answer on conditional writes was learnt (the store as
-- it describes itself: URL and endpoint): the same bucket name behind
-- another endpoint is another store, whose answer is not known.
ALTER TABLE targets ADD COLUMN conditional_writes_at TEXT;
