"""`ictview relocate WS --from OLD --to NEW`: remap where the exams' source DICOM now lives.

The catalog keeps each exam's source folder (`exams.source`, absolute since import stores
it resolved) because DICOM SEG export re-reads the original instances for their UIDs and
patient identity. When the data move (another disk, another machine), relocate rewrites
every source under OLD to the same relative place under NEW, in one transaction, with one
audit-log row per exam. OLD is matched on whole path components, either as given or
resolved, so sources that older versions stored relative to the import's working folder
are remapped too.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ictview.errors import IctviewError
from ictview.store import audit
from ictview.store.catalog import transaction, utc_now
from ictview.store.workspace import Workspace


def _parts(p: Path | str) -> tuple[str, ...]:
    return Path(os.path.normpath(str(p))).parts


def _under(source: str, prefix: tuple[str, ...]) -> tuple[str, ...] | None:
    """The components of `source` below `prefix`, or None when it is not under it."""
    parts = _parts(source)
    if len(parts) >= len(prefix) and parts[: len(prefix)] == prefix:
        return parts[len(prefix):]
    return None


def relocate_sources(ws: Workspace, old: Path | str, new: Path | str) -> list[tuple[str, str, str]]:
    """Rewrite every exam source under `old` to the same place under `new` (resolved, must
    exist). Returns (exam, old source, new source) for each exam changed."""
    new_root = Path(new).expanduser().resolve()
    if not new_root.is_dir():
        raise IctviewError(f"{new}: folder not found (--to must be where the DICOM are now)")
    prefixes = {_parts(Path(old).expanduser()), _parts(Path(old).expanduser().resolve())}
    rows = ws.con.execute("SELECT name, source FROM exams WHERE source != '' ORDER BY name")
    changes = []
    for name, source in rows.fetchall():
        for prefix in prefixes:
            rest = _under(source, prefix)
            if rest is not None:
                changes.append((name, source, str(new_root.joinpath(*rest))))
                break
    if not changes:
        raise IctviewError(f"{ws.root}: no exam's source is under {old} (nothing relocated)")
    now = utc_now()
    with transaction(ws.con) as con:
        for name, before, after in changes:
            con.execute("UPDATE exams SET source=? WHERE name=?", (after, name))
            audit.append(con, "relocate", "relocate_source", name, f"{before} -> {after}", at=now)
    return changes


def add_relocate_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "relocate",
        help="the source DICOM moved: remap the exams' source folders from OLD to NEW",
        description="Rewrite the recorded source folder of every exam under OLD to the same "
        "place under NEW (DICOM SEG export reads the source DICOM again).",
    )
    p.add_argument("workspace", type=Path, metavar="WS", help="workspace folder")
    p.add_argument("--from", dest="old", required=True, metavar="OLD",
                   help="the folder the DICOM were imported from")
    p.add_argument("--to", dest="new", required=True, type=Path, metavar="NEW",
                   help="where that folder is now")
    return p


def cmd_relocate(args) -> int:
    with Workspace.open(args.workspace) as ws:
        changes = relocate_sources(ws, args.old, args.new)
    missing = sum(1 for _, _, after in changes if not Path(after).is_dir())
    print(f"relocated the source of {len(changes)} exam(s) to {Path(args.new).resolve()}"
          + (f"; {missing} of those folders do not exist there" if missing else ""))
    return 0
