"""SQLite connection to the workspace catalog (WAL mode, foreign keys, migrations)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from ictview.errors import IctviewError, note_file
from ictview.store.schema import MIGRATIONS, SCHEMA_VERSION


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def connect(db_path: Path, create: bool) -> sqlite3.Connection:
    if not create and not db_path.exists():
        raise IctviewError(f"{db_path.parent}: not an ictview workspace (no workspace.sqlite)")
    try:
        # autocommit mode: transactions are explicit (`with transaction(con):`)
        con = sqlite3.connect(db_path, timeout=30, isolation_level=None, factory=CatalogConnection)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; WAL keeps it consistent
        con.execute("PRAGMA foreign_keys=ON")
        con.execute("PRAGMA busy_timeout=30000")
        _migrate(con, db_path)
    except sqlite3.DatabaseError as e:
        raise IctviewError(f"{db_path}: not a usable workspace catalog ({e})") from None
    return con


def _named(exc: sqlite3.Error, con: "CatalogConnection") -> sqlite3.Error:
    """The error, same type (callers such as `ictview check` handle sqlite3 errors), with
    the catalog's file noted on it for `ictview.errors.read_error`."""
    note_file(exc, con.path)
    return exc


class _Cursor(sqlite3.Cursor):
    """A cursor whose errors name the catalog file (a damaged page shows on any fetch)."""

    def execute(self, *args):
        try:
            return super().execute(*args)
        except sqlite3.Error as e:
            raise _named(e, self.connection)

    def executemany(self, *args):
        try:
            return super().executemany(*args)
        except sqlite3.Error as e:
            raise _named(e, self.connection)

    def executescript(self, *args):
        try:
            return super().executescript(*args)
        except sqlite3.Error as e:
            raise _named(e, self.connection)

    def fetchone(self):
        try:
            return super().fetchone()
        except sqlite3.Error as e:
            raise _named(e, self.connection)

    def fetchmany(self, *args):
        try:
            return super().fetchmany(*args)
        except sqlite3.Error as e:
            raise _named(e, self.connection)

    def fetchall(self):
        try:
            return super().fetchall()
        except sqlite3.Error as e:
            raise _named(e, self.connection)

    def __next__(self):
        try:
            return super().__next__()
        except sqlite3.Error as e:
            raise _named(e, self.connection)


class CatalogConnection(sqlite3.Connection):
    """sqlite3.Connection whose every statement's error names the database file
    (`ictview.errors.read_error` then gives the user one line, never a traceback)."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        self.path = Path(database)

    def cursor(self, factory=_Cursor):
        return super().cursor(factory)

    def execute(self, *args):
        return self.cursor().execute(*args)

    def executemany(self, *args):
        return self.cursor().executemany(*args)

    def executescript(self, *args):
        return self.cursor().executescript(*args)


class transaction:
    """`with transaction(con):` runs the block in BEGIN IMMEDIATE ... COMMIT/ROLLBACK."""

    def __init__(self, con: sqlite3.Connection):
        self.con = con

    def __enter__(self) -> sqlite3.Connection:
        self.con.execute("BEGIN IMMEDIATE")
        return self.con

    def __exit__(self, exc_type, exc, tb) -> None:
        self.con.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _migrate(con: sqlite3.Connection, db_path: Path) -> None:
    has_meta = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'"
    ).fetchone()
    version = 0
    if has_meta:
        row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
    if version > SCHEMA_VERSION:
        raise IctviewError(
            f"{db_path}: workspace schema version {version} is newer than this ictview "
            f"({SCHEMA_VERSION}); upgrade ictview"
        )
    for v in range(version + 1, SCHEMA_VERSION + 1):
        with transaction(con):
            for step in MIGRATIONS[v]:
                con.execute(step) if isinstance(step, str) else step(con)
            con.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(v),)
            )
            if v == 1:
                con.execute("INSERT INTO meta(key, value) VALUES ('created_at', ?)", (utc_now(),))
