-- References found in a file, by content hash and syntax, so a file that
-- references nothing is never read again and one that does is read only
-- when it has to be rewritten.
CREATE TABLE refs_cache (
    blake3 TEXT NOT NULL,
    mode   TEXT NOT NULL,
    -- JSON: [{"target": "img/a.png", "url": "../img/a.png", "weak": false}]
    refs   TEXT NOT NULL,
    PRIMARY KEY (blake3, mode)
) WITHOUT ROWID;

-- The result of rewriting a file: keyed by its content hash and the names
-- its references were rewritten to.
CREATE TABLE rewrite_cache (
    input    TEXT PRIMARY KEY,
    blake3   TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    size     INTEGER NOT NULL
) WITHOUT ROWID;
