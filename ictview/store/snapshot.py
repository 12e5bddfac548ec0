"""Read-only catalog snapshots for the ranks of a multi-node run on a shared filesystem.

SQLite documents WAL mode as unsafe on network filesystems (its shared-memory index
needs one host's memory) and POSIX locks there as unreliable. So under torchrun only
rank 0 opens the live catalog (WS/workspace.sqlite, WAL) and writes it; before the work
is shared out it copies the catalog, with the SQLite backup API (a consistent copy
even while the GUI or an import writes), into WS/runs/<run>/catalog.snapshot.sqlite:

- journal_mode=DELETE in the copy, so the file is the whole database (no -wal, -shm);
- written under a temporary name, fsync'd, made read-only (0444) and renamed into
  place, so a rank sees either no snapshot or a complete one;
- never written again (a later run writes its own), so ranks open it with
  `file:...?mode=ro&immutable=1`: SQLite then takes no lock and creates no file at all
  next to it; nothing on the shared filesystem needs locking for these readers.

Ranks > 0 then write only their own per-exam files (atomic rename, arrays.atomic_h5);
rank 0 records them in the live catalog afterwards.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from urllib.parse import quote

from ictview.errors import IctviewError
from ictview.store import arrays
from ictview.store.catalog import CatalogConnection
from ictview.store.schema import SCHEMA_VERSION

SNAPSHOT_NAME = "catalog.snapshot.sqlite"


def write_snapshot(con: sqlite3.Connection, dest: Path) -> Path:
    """Copy the catalog behind `con` to `dest` (atomically; read-only file). Returns dest."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}{arrays.TMP_MARK}{os.getpid()}-{os.urandom(4).hex()}")
    try:
        out = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.backup(out)
            # the copy carries the source's WAL flag: a rollback-journal file is complete
            # in itself, and an immutable reader must not look for a -wal beside it
            mode = out.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise IctviewError(f"{tmp}: could not leave WAL mode (journal_mode {mode})")
        finally:
            out.close()
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.replace(tmp, dest)
        arrays.fsync_dir(dest.parent)
    except sqlite3.Error as e:
        raise IctviewError(f"{dest}: cannot write the catalog snapshot ({e})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def snapshot_uri(path: Path) -> str:
    # immutable=1: no locks, no -shm/-wal, no change detection: the file never changes
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro&immutable=1"


def open_snapshot(path: Path) -> sqlite3.Connection:
    """A read-only connection to a snapshot; IctviewError naming it when it is missing,
    damaged or of another schema version (a snapshot is never migrated)."""
    path = Path(path)
    if not path.is_file():
        raise IctviewError(f"{path}: catalog snapshot not found (rank 0 writes it first)")
    try:
        con = sqlite3.connect(snapshot_uri(path), uri=True, isolation_level=None,
                              factory=CatalogConnection)
        con.path = path  # errors name the file, not the URI
        con.row_factory = sqlite3.Row
        row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.DatabaseError as e:
        raise IctviewError(f"{path}: not a usable catalog snapshot ({e})") from None
    if row is None or int(row[0]) != SCHEMA_VERSION:
        con.close()
        raise IctviewError(f"{path}: catalog snapshot of schema {row[0] if row else '?'}, "
                           f"this ictview reads {SCHEMA_VERSION}")
    return con
