-- What decided the entries of a target's deploy: a digest of the settings
-- and every collected file's name and content. A run with the same inputs
-- would prepare the same entries, so while the target still serves that
-- deploy they are taken from its manifest instead of being prepared again.
CREATE TABLE prepared (
    target_id INTEGER PRIMARY KEY REFERENCES targets(id),
    inputs    TEXT NOT NULL,
    deploy    TEXT NOT NULL,
    -- JSON: the warnings preparing them gave, said again when they are reused.
    warnings  TEXT NOT NULL
) WITHOUT ROWID;
