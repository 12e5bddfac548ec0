"""Errors that reach the user as one line naming the file and the problem.

`IctviewError` is the project's way. `read_error()` is the one translation of what the
libraries raise while reading a file (h5py, SQLite, numpy, the OS) into an IctviewError
that names the file. The data layer notes the file on an error where it knows it (the
HDF5 opener in store/arrays, the catalog connection in store/catalog: `note_file`), and
every entry point (`ictview` and `ictview-train` main, the GUI's exception hook and
exam-open path) passes what escapes through `read_error`, so a damaged workspace file
gives one line, never a traceback. Anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import os
import sqlite3

FILE_ATTR = "ictview_file"
# SQLite result codes that mean the file itself is damaged (not a locked or busy database)
_SQLITE_DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")
# raised by h5py / numpy / json / our parsers on a damaged file; a read error only when
# the file it came from was noted (elsewhere these are bugs)
_WHEN_NOTED = (KeyError, ValueError, TypeError, RuntimeError, IndexError, EOFError, AttributeError)
_MAX_LINE = 400


class IctviewError(Exception):
    """A problem with the user's input or workspace; the CLI prints it as one line."""


def note_file(exc: BaseException, path: str | os.PathLike) -> BaseException:
    """Record on `exc` the file it was raised reading (the innermost note wins)."""
    if getattr(exc, FILE_ATTR, None) is None:
        try:
            setattr(exc, FILE_ATTR, os.fspath(path))
        except (AttributeError, TypeError):  # an exception type without a __dict__
            pass
    return exc


def noted_file(exc: BaseException) -> str | None:
    """The file noted on `exc`, or an OSError's own file name."""
    path = getattr(exc, FILE_ATTR, None)
    if path is None and isinstance(exc, OSError) and exc.filename is not None:
        path = os.fspath(exc.filename)
    return path


def read_error(exc: BaseException, path: str | os.PathLike | None = None) -> IctviewError | None:
    """`exc` as a one-line IctviewError naming the file (`path`, else the one noted on it);
    `exc` itself when it is already an IctviewError; None when it is not a read error."""
    if isinstance(exc, IctviewError):
        return exc
    where = noted_file(exc) or (os.fspath(path) if path is not None else None)
    detail = first_line(exc)
    if isinstance(exc, sqlite3.Error):
        if getattr(exc, "sqlite_errorname", "") in _SQLITE_DAMAGED or "malformed" in detail:
            problem = f"damaged SQLite database ({detail})"
        else:
            problem = f"SQLite error ({detail})"
    elif isinstance(exc, MemoryError):  # numpy's ArrayMemoryError too: a damaged shape
        problem = f"not enough memory to read it ({detail or 'MemoryError'})"
    elif isinstance(exc, OSError):
        named = exc.strerror and exc.filename is not None  # e.g. "No such file or directory"
        problem = exc.strerror if named else f"damaged or unreadable ({detail})"
    elif where is not None and isinstance(exc, _WHEN_NOTED):
        problem = f"damaged or not the expected file ({type(exc).__name__}: {detail})"
    else:
        return None
    line = f"{where}: {problem}" if where else problem
    err = IctviewError(line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 3] + "...")
    err.__cause__ = exc if isinstance(exc, Exception) else None
    if where is not None:
        note_file(err, where)
    return err


def first_line(exc: BaseException) -> str:
    # KeyError's str() quotes its argument; h5py puts its message there
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return "".join(c if c.isprintable() else "?" for c in (lines[0] if lines else ""))
