-- Sidereal inventory, version 1: the one source of truth every service reads.
-- MACs are stored normalised: lower-case, colon-separated (aa:bb:cc:dd:ee:ff).

CREATE TABLE roots (
  name        TEXT PRIMARY KEY CHECK (name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*' AND length(name) <= 63),
  arch        TEXT NOT NULL CHECK (arch IN ('amd64', 'i386', 'arm64')),
  kernel      TEXT NOT NULL,            -- file name in the TFTP root, e.g. vmlinuz-6.1.0-18-amd64@bookworm
  initrd      TEXT NOT NULL,
  nfs_path    TEXT NOT NULL CHECK (nfs_path GLOB '/*'),
  kernel_args TEXT NOT NULL DEFAULT '',
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE groups (
  name        TEXT PRIMARY KEY CHECK (name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._-]*' AND length(name) <= 63),
  root        TEXT REFERENCES roots(name) ON UPDATE CASCADE ON DELETE RESTRICT,
  boot_mode   TEXT CHECK (boot_mode IN ('root', 'maintenance', 'local')),
  loader      TEXT CHECK (loader IN ('pxelinux', 'lpxelinux', 'ipxe')),
  kernel_args TEXT,
  boot_files  TEXT CHECK (boot_files IS NULL OR json_valid(boot_files)),  -- {"efi64": "..."} overrides
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);

CREATE TABLE machines (
  mac         TEXT PRIMARY KEY CHECK (mac GLOB '[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]:[0-9a-f][0-9a-f]'),
  hostname    TEXT UNIQUE COLLATE NOCASE,
  ipv4        TEXT UNIQUE,
  group_name  TEXT REFERENCES groups(name) ON UPDATE CASCADE ON DELETE RESTRICT,
  root        TEXT REFERENCES roots(name) ON UPDATE CASCADE ON DELETE RESTRICT,
  boot_mode   TEXT CHECK (boot_mode IN ('root', 'maintenance', 'local')),   -- NULL: inherit
  kernel_args TEXT,                                                          -- NULL: none of its own
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL
);
CREATE INDEX machines_group ON machines(group_name);
CREATE INDEX machines_root ON machines(root);

-- One lease per MAC, kept across PXE ROM -> bootloader -> initramfs -> OS.
CREATE TABLE leases (
  mac         TEXT PRIMARY KEY,
  ipv4        TEXT NOT NULL UNIQUE,
  hostname    TEXT,
  state       TEXT NOT NULL CHECK (state IN ('bound', 'released', 'declined')),
  expires_at  INTEGER NOT NULL,        -- epoch ms
  updated_at  INTEGER NOT NULL
);

CREATE TABLE boot_events (
  id          INTEGER PRIMARY KEY,
  mac         TEXT NOT NULL,
  at          INTEGER NOT NULL,        -- epoch ms
  stage       TEXT NOT NULL CHECK (stage IN ('dhcp', 'tftp', 'http', 'kernel', 'nfs', 'booted')),
  detail      TEXT NOT NULL CHECK (json_valid(detail))
);
CREATE INDEX boot_events_mac_at ON boot_events(mac, at);
