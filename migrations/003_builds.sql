-- Sidereal inventory, version 3: root build jobs.

-- One row per `sidereal root build` / POST /api/v1/roots/:name/builds. `root` is not a foreign
-- key: a root enters the roots table only when its first build publishes. The partial unique
-- index is what makes "one build per root at a time" hold across processes (API, --offline CLI).
CREATE TABLE builds (
  id           INTEGER PRIMARY KEY,
  root         TEXT NOT NULL CHECK (root GLOB '[a-z0-9]*' AND root NOT GLOB '*[^a-z0-9._-]*' AND length(root) <= 63),
  recipe       TEXT NOT NULL,                 -- the recipe file the build read
  state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
  step         TEXT,                          -- plan step id (bootstrap, packages, ...)
  step_title   TEXT,
  progress     REAL NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
  generation   TEXT,                          -- gen-<timestamp>, once created
  error        TEXT,
  log_file     TEXT NOT NULL,
  requested_by TEXT NOT NULL,
  owner        TEXT,                          -- "<pid>:<start time>" of the process running it
  result       TEXT CHECK (result IS NULL OR json_valid(result)),
  cancel_requested_by TEXT,                   -- set by a cancel from another process; the owner polls it
  created_at   INTEGER NOT NULL,
  started_at   INTEGER,
  finished_at  INTEGER
);
CREATE UNIQUE INDEX builds_one_active_per_root ON builds(root) WHERE state IN ('queued', 'running');
CREATE INDEX builds_root_id ON builds(root, id);
