-- The state DB is a cache of facts about the source tree and the targets;
-- the remote manifests stay the source of truth.

-- What each source file hashed to, keyed by its absolute path. A row is used
-- only when size, mtime and inode still match and `trusted` is set: a file
-- whose mtime was within the filesystem's granularity of the scan could
-- change again without its mtime moving (the racy-git rule).
CREATE TABLE stat_cache (
    path     TEXT PRIMARY KEY,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode    INTEGER NOT NULL,
    blake3   TEXT NOT NULL,
    trusted  INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE targets (
    id                 INTEGER PRIMARY KEY,
    url                TEXT NOT NULL UNIQUE,
    -- NULL until probed; 1 when the store enforces If-None-Match/If-Match.
    conditional_writes INTEGER,
    -- The remote manifest.json as last seen, for a conditional GET.
    manifest_etag      TEXT,
    manifest_json      TEXT,
    current_deploy     TEXT
);

-- Objects the store confirmed, recorded one by one as they land so an
-- interrupted run resumes without uploading them again.
CREATE TABLE objects (
    target_id   INTEGER NOT NULL REFERENCES targets(id),
    key         TEXT NOT NULL,
    blake3      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    -- A digest of the headers the object was written with.
    meta        TEXT NOT NULL,
    uploaded_at INTEGER NOT NULL,
    PRIMARY KEY (target_id, key)
) WITHOUT ROWID;

CREATE TABLE deploys (
    target_id  INTEGER NOT NULL REFERENCES targets(id),
    id         TEXT NOT NULL,
    parent     TEXT,
    created    TEXT NOT NULL,
    files      INTEGER NOT NULL,
    uploaded   INTEGER NOT NULL,
    bytes      INTEGER NOT NULL,
    git_commit TEXT,
    ci_run     TEXT,
    PRIMARY KEY (target_id, id)
) WITHOUT ROWID;

-- Compressed sizes by content hash and encoding; size is NULL when the
-- encoding did not save enough to be worth keeping.
CREATE TABLE compressed (
    blake3   TEXT NOT NULL,
    encoding TEXT NOT NULL,
    size     INTEGER,
    PRIMARY KEY (blake3, encoding)
) WITHOUT ROWID;
