-- A digest of the settings and every collected file's path, size, mtime and
-- inode when each of them was old enough to trust (see `hash.rs`). A run
-- whose walk gives the same digest has the same inputs without reading the
-- stat cache or hashing anything. NULL when some file was too recent.
ALTER TABLE prepared ADD COLUMN stat_key TEXT;
