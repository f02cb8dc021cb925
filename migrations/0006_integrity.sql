-- The Subresource Integrity value (`sha384-<base64>`) of the bytes a cached
-- hash or rewriting result stands for, so a file the caches know is not read
-- again to name its integrity. '' in rows written before: such a row is a
-- miss, and the file is read (and the row filled) once.
ALTER TABLE stat_cache ADD COLUMN integrity TEXT NOT NULL DEFAULT '';
ALTER TABLE rewrite_cache ADD COLUMN integrity TEXT NOT NULL DEFAULT '';
