-- Sidereal inventory, version 4: NFS exports.

-- nfs-ganesha puts the Export_Id in every file handle: a path must keep its id across reloads
-- and restarts, or nodes running from it get ESTALE. Ids are handed out once and kept.
CREATE TABLE nfs_export_ids (
  path      TEXT PRIMARY KEY,
  export_id INTEGER NOT NULL UNIQUE CHECK (export_id BETWEEN 1 AND 65535)
);

-- The NFS path each machine was last told to boot (its menu or iPXE script): a generation stays
-- exported while some machine's last boot used it, so a rebuild never pulls the root from under
-- a running node.
CREATE TABLE machine_boots (
  mac       TEXT PRIMARY KEY,
  root      TEXT NOT NULL,
  nfs_path  TEXT NOT NULL,
  mode      TEXT NOT NULL CHECK (mode IN ('root', 'maintenance')),
  at        INTEGER NOT NULL
);
CREATE INDEX machine_boots_root ON machine_boots(root);
