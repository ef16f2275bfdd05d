-- Sidereal inventory, version 2: what the admin API needs.

-- Bearer tokens: only a SHA-256 of each token is kept (tokens are 256 random bits,
-- so a fast hash is enough); the token itself is shown once, at creation.
CREATE TABLE api_tokens (
  id           INTEGER PRIMARY KEY,
  name         TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
  role         TEXT NOT NULL CHECK (role IN ('admin', 'read')),
  hash         TEXT NOT NULL UNIQUE,
  created_at   INTEGER NOT NULL,
  last_used_at INTEGER,
  revoked_at   INTEGER
);

-- Every write, in the same transaction as the write: who, what, before and after.
CREATE TABLE audit_log (
  id      INTEGER PRIMARY KEY,
  at      INTEGER NOT NULL,
  actor   TEXT NOT NULL,
  action  TEXT NOT NULL,
  target  TEXT NOT NULL,
  before  TEXT CHECK (before IS NULL OR json_valid(before)),
  after   TEXT CHECK (after IS NULL OR json_valid(after))
);
CREATE INDEX audit_log_at ON audit_log(at);

-- Unknown MACs that sent DHCP: what they told us, to adopt them in one call.
CREATE TABLE discovered (
  mac          TEXT PRIMARY KEY,
  first_seen   INTEGER NOT NULL,
  last_seen    INTEGER NOT NULL,
  seen_count   INTEGER NOT NULL DEFAULT 1,
  arch_code    INTEGER,
  vendor_class TEXT,
  user_class   TEXT,
  hostname     TEXT
);
