"""The workspace: SQLite catalog + HDF5 arrays, the one source of truth on disk.

Layout (DESIGN.md):
    WS/workspace.sqlite               catalog (WAL)
    WS/volumes/<exam>.h5              HU int16 (z, y, x) + geometry
    WS/labels/<labelset>/<exam>.h5    uint8 label volume, atomic replace
    WS/predictions/<run>/<exam>.h5    model outputs
    WS/runs/<run>/                    run folders

Integrity: an exam's files are written (atomically) before its catalog rows, and the
rows of one exam are committed in one transaction, so a crash leaves either the
whole exam or only orphan files, which the next import removes under the import lock.

Blinding: a workspace is opened for one OS login (`ws.login`), and its readers of
labels and predictions ask `ws.guard` (ictview/store/read_guard.py) first; that
module is the one place test-retest blinding is decided.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ictview.core.geometry import Geometry
from ictview import identity
from ictview.core.labels import FINDINGS
from ictview.errors import IctviewError
from ictview.store import arrays, audit
from ictview.store.catalog import connect, transaction, utc_now
from ictview.store.read_guard import ReadGuard

ROLES = ("labeled", "unlabeled", "validation", "test")
DB_NAME = "workspace.sqlite"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """A name usable as a file name on every OS, stable for the same input."""
    name = _SAFE.sub("_", text.strip()).strip("._")
    return name or "unnamed"


# Exam names come from DICOM tags (PatientID, StudyInstanceUID) and name files
# (volumes/<exam>.h5, labels/<set>/<exam>.h5 + temp suffixes): 64 characters keeps every
# path component far below the 255 bytes file systems allow.
MAX_EXAM_NAME = 64
_RESERVED = {"CON", "PRN", "AUX", "NUL",
             *(f"COM{i}" for i in range(10)), *(f"LPT{i}" for i in range(10))}


def bounded_name(text: str, limit: int = MAX_EXAM_NAME) -> str:
    """safe_name() of at most `limit` characters, stable for the same input. A cut name
    ends in 8 hex digits of the full text's hash, so two long IDs sharing a prefix differ."""
    name = safe_name(text)
    if len(name) > limit:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[: limit - 9].rstrip('._-')}-{digest}"
    if name.split(".")[0].upper() in _RESERVED:  # device names on Windows
        name = f"{name}_"
    return name


@dataclass(frozen=True)
class Exam:
    id: int
    name: str
    site: str
    role: str
    patient_id: str
    study_uid: str
    series_uid: str
    n_slices: int
    rows: int
    cols: int
    spacing: tuple[float, float, float]  # (z, y, x) mm
    warnings: tuple[str, ...]

    @property
    def voxel_ml(self) -> float:
        return float(np.prod(self.spacing)) / 1000.0


@dataclass
class NewExam:
    """Everything one exam brings into the workspace, committed together."""

    name: str
    site: str
    hu: np.ndarray | None  # None when `staged` holds the volume already written
    geometry: Geometry
    sop_uids: list[str]
    positions: list[float]
    patient_id: str
    study_uid: str
    series_uid: str
    accession_number: str = ""
    study_date: str = ""
    series_description: str = ""
    slice_thickness: float | None = None
    manufacturer: str = ""
    kernel: str = ""
    warnings: tuple[str, ...] = ()
    source: str = ""
    series_rows: tuple[tuple[str, str, float | None, int, bool, str], ...] = ()
    # (reader, finding) -> 0/1
    reads: dict[tuple[str, str], int] | None = None
    reads_source: str = ""
    # slice index -> {finding: 0/1}
    image_labels: dict[int, dict[str, int]] | None = None
    image_labels_source: str = ""
    # labelset -> uint8 (z, y, x)
    masks: dict[str, np.ndarray] | None = None
    # (path, sha1, shape) of a complete volume file a parallel import's worker wrote under a
    # temporary name in volumes/: add_exam renames it into place instead of writing `hu`
    staged: tuple[str, str, tuple[int, int, int]] | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.staged[2]) if self.staged else tuple(self.hu.shape)


def volume_attrs(patient_id: str, study_uid: str, series_uid: str, site: str) -> dict:
    """The attributes of a volume file: no exam name, so a parallel import's worker can
    write the file before the parent has named the exam."""
    return {"patient_id": patient_id, "study_uid": study_uid, "series_uid": series_uid,
            "site": site}


def stage_volume(root: Path, study_uid: str, hu: np.ndarray, geometry: Geometry,
                 sop_uids: list[str], attrs: dict) -> tuple[str, str]:
    """A complete volume file in root/volumes/ under a name carrying arrays.TMP_MARK (the
    import lock's orphan sweep deletes such names, `ictview check` ignores them) ->
    (path, sha1). Workspace.add_exam renames it into place with the exam's rows; a parallel
    import's workers call this, holding no catalog connection."""
    key = hashlib.sha1(study_uid.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    tag = f"{arrays.TMP_MARK}staged-{os.getpid()}-{os.urandom(4).hex()}"
    path = Path(root) / "volumes" / f"{key}.h5{tag}"
    return str(path), arrays.write_volume(path, hu, geometry, sop_uids, attrs)


class Workspace:
    # True for a workspace opened on a catalog snapshot (open_snapshot): reads only
    read_only = False

    def __init__(self, root: Path | str, create: bool = False, login: str | None = None):
        self.root = Path(root)
        # who reads: the OS login (tests inject one); never a typed rater name
        self.login = login if login is not None else identity.current_login()
        if create:
            if self.root.exists() and not self.root.is_dir():
                raise IctviewError(f"{self.root}: exists and is not a folder")
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise IctviewError(f"{self.root}: workspace folder not found")
        self.con = connect(self.root / DB_NAME, create=create)
        for sub in ("volumes", "labels", "predictions", "runs"):
            (self.root / sub).mkdir(exist_ok=True)
        self.guard = ReadGuard(self, self.login)

    @classmethod
    def open(cls, root: Path | str, login: str | None = None) -> "Workspace":
        return cls(root, create=False, login=login)

    @classmethod
    def create(cls, root: Path | str, login: str | None = None) -> "Workspace":
        return cls(root, create=True, login=login)

    @classmethod
    def open_snapshot(cls, root: Path | str, snapshot: Path,
                      login: str | None = None) -> "Workspace":
        """The workspace at `root` read through an immutable catalog snapshot
        (ictview/store/snapshot.py): what ranks > 0 of a multi-node run open instead of
        the live catalog. Catalog writes fail; per-exam files are written as usual
        (write_prediction_file), and rank 0 records them."""
        from ictview.store.snapshot import open_snapshot

        ws = cls.__new__(cls)
        ws.root = Path(root)
        if not ws.root.is_dir():
            raise IctviewError(f"{ws.root}: workspace folder not found")
        ws.login = login if login is not None else identity.current_login()
        ws.con = open_snapshot(snapshot)
        ws.read_only = True
        ws.guard = ReadGuard(ws, ws.login)
        return ws

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- paths ------------------------------------------------------------------------

    def volume_path(self, exam: str) -> Path:
        return self.root / "volumes" / f"{exam}.h5"

    def label_path(self, labelset: str, exam: str) -> Path:
        return self.root / "labels" / labelset / f"{exam}.h5"

    def prediction_path(self, run: str, exam: str) -> Path:
        return self.root / "predictions" / run / f"{exam}.h5"

    def run_dir(self, run: str) -> Path:
        return self.root / "runs" / run

    # ---- import lock and recovery -------------------------------------------------------

    @contextmanager
    def import_lock(self) -> Iterator[None]:
        """Serialises imports between processes; orphans are cleaned only under it."""
        lock_path = self.root / ".import.lock"
        with open(lock_path, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise IctviewError(
                    f"{self.root}: another import is running in this workspace"
                ) from None
            try:
                self._remove_orphans()
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def _remove_orphans(self) -> list[Path]:
        """Delete what a crashed import left: volume temp files, and volume and label
        files of exams that never got committed.

        Label temp files are never touched: an editor saving an existing exam writes
        one at any moment, without the import lock (deleting it failed the save).
        Only imports write volumes, and only under the lock, so every volume temp file
        here is a dead import's.
        """
        known = {r[0] for r in self.con.execute("SELECT name FROM exams")}
        removed = []
        for p in (self.root / "volumes").glob("*.h5*"):
            if arrays.TMP_MARK in p.name or p.stem not in known:
                p.unlink(missing_ok=True)
                removed.append(p)
        for p in (self.root / "labels").glob("*/*.h5"):
            # no editor can hold a label file of an exam that is not in the catalog
            if p.stem not in known:
                p.unlink(missing_ok=True)
                removed.append(p)
        return removed

    # ---- sites --------------------------------------------------------------------------

    def ensure_site(self, name: str, role: str) -> None:
        if role not in ROLES:
            raise IctviewError(f"role '{role}' is not one of {', '.join(ROLES)}")
        if safe_name(name) != name:
            raise IctviewError(f"site name '{name}' may only use letters, digits, '.', '_', '-'")
        row = self.con.execute("SELECT role FROM sites WHERE name=?", (name,)).fetchone()
        if row and row["role"] != role:
            raise IctviewError(
                f"{self.root}: site '{name}' already has role '{row['role']}', not '{role}'"
            )
        if not row:
            with transaction(self.con):
                self.con.execute(
                    "INSERT INTO sites(name, role, created_at) VALUES (?,?,?)",
                    (name, role, utc_now()),
                )

    def drop_empty_site(self, name: str) -> None:
        """Remove a site row that has no exams (an import that imported nothing)."""
        with transaction(self.con):
            self.con.execute(
                "DELETE FROM sites WHERE name=? AND NOT EXISTS "
                "(SELECT 1 FROM exams WHERE site=?)", (name, name),
            )

    def sites(self) -> dict[str, str]:
        return {r["name"]: r["role"] for r in self.con.execute("SELECT * FROM sites ORDER BY name")}

    # ---- exams --------------------------------------------------------------------------

    def find_study(self, study_uid: str) -> str | None:
        row = self.con.execute("SELECT name FROM exams WHERE study_uid=?", (study_uid,)).fetchone()
        return row[0] if row else None

    def unique_exam_name(self, wanted: str) -> str:
        base = bounded_name(wanted)
        name, n = base, 1
        while self.con.execute("SELECT 1 FROM exams WHERE name=?", (name,)).fetchone():
            n += 1
            name = f"{base}-{n}"
        return name

    def add_exam(self, new: NewExam) -> Exam:
        """Write the exam's files, then commit all its rows in one transaction."""
        z, y, x = new.shape
        meta = volume_attrs(new.patient_id, new.study_uid, new.series_uid, new.site)
        vpath = self.volume_path(new.name)
        if new.staged:
            # the worker wrote these same attrs; the rename is the step atomic_h5 ends with
            staged, sha1 = Path(new.staged[0]), new.staged[1]
            os.replace(staged, vpath)
            arrays.fsync_dir(vpath.parent)
        else:
            sha1 = arrays.write_volume(vpath, new.hu, new.geometry, new.sop_uids, meta)
        mask_sha1 = {}
        for labelset, mask in (new.masks or {}).items():
            self._check_mask(new.name, mask, new.shape)
            mask_sha1[labelset] = arrays.write_labels(
                self.label_path(labelset, new.name), mask, {"exam": new.name, "labelset": labelset}
            )
        now = utc_now()
        sz, sy, sx = new.geometry.spacing_zyx
        with transaction(self.con) as con:
            cur = con.execute(
                """INSERT INTO exams(name, site, patient_id, accession_number, study_date,
                    study_uid, series_uid, series_description, n_slices, rows, cols,
                    spacing_z, spacing_y, spacing_x, slice_thickness, tilt_degrees, manufacturer,
                    kernel, volume_file, volume_sha1, warnings, source, imported_at)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
                (
                    new.name, new.site, new.patient_id, new.accession_number, new.study_date,
                    new.study_uid, new.series_uid, new.series_description, z, y, x,
                    sz, sy, sx, new.slice_thickness, new.geometry.tilt_degrees,
                    new.manufacturer, new.kernel, str(vpath.relative_to(self.root)), sha1,
                    json.dumps(list(new.warnings)), new.source, now,
                ),
            )
            exam_id = cur.lastrowid
            con.executemany(
                "INSERT INTO slices(exam_id, idx, sop_uid, position) VALUES (?,?,?,?)",
                [(exam_id, i, s, p) for i, (s, p) in enumerate(zip(new.sop_uids, new.positions))],
            )
            con.executemany(
                """INSERT INTO series(exam_id, series_uid, description, slice_thickness,
                   n_files, chosen, reason) VALUES (?,?,?,?,?,?,?)""",
                [(exam_id, *row) for row in new.series_rows],
            )
            if new.reads:
                self._insert_reads(exam_id, new.reads, new.reads_source)
            if new.image_labels:
                self._insert_image_labels(exam_id, new.image_labels, new.image_labels_source)
            for labelset, mask in (new.masks or {}).items():
                self._ensure_labelset_row(labelset, "reference", None)
                self._upsert_label_row(labelset, exam_id, "import", 0.0, mask, now,
                                       mask_sha1[labelset])
            self._audit(con, "import", "import_exam", new.name, new.source)
        return self.exam(new.name)

    def _row_to_exam(self, r: sqlite3.Row) -> Exam:
        return Exam(
            id=r["id"], name=r["name"], site=r["site"], role=r["role"],
            patient_id=r["patient_id"], study_uid=r["study_uid"], series_uid=r["series_uid"],
            n_slices=r["n_slices"], rows=r["rows"], cols=r["cols"],
            spacing=(r["spacing_z"], r["spacing_y"], r["spacing_x"]),
            warnings=tuple(json.loads(r["warnings"])),
        )

    _EXAM_SQL = "SELECT exams.*, sites.role AS role FROM exams JOIN sites ON exams.site = sites.name"

    def exam(self, name: str) -> Exam:
        r = self.con.execute(self._EXAM_SQL + " WHERE exams.name=?", (name,)).fetchone()
        if r is None:
            raise IctviewError(f"{self.root}: no exam named '{name}'")
        return self._row_to_exam(r)

    def exams(self, site: str | None = None, role: str | None = None) -> list[Exam]:
        sql, args = self._EXAM_SQL + " WHERE 1=1", []
        if site:
            sql, args = sql + " AND exams.site=?", args + [site]
        if role:
            sql, args = sql + " AND sites.role=?", args + [role]
        return [self._row_to_exam(r) for r in self.con.execute(sql + " ORDER BY exams.name", args)]

    def read_volume(self, exam: str, verify: bool = False) -> arrays.StoredVolume:
        """verify=True first checks the file against the catalog's checksum (export does:
        a flipped voxel must not leave the workspace silently)."""
        if verify:
            self.verify_volume(exam)
        return arrays.read_volume(self.volume_path(exam))

    def verify_volume(self, exam: str) -> None:
        row = self.con.execute("SELECT volume_sha1 FROM exams WHERE name=?", (exam,)).fetchone()
        if row is None:
            raise IctviewError(f"{self.root}: no exam named '{exam}'")
        arrays.verify_file(self.volume_path(exam), row[0])

    def verify_labels(self, labelset: str, exam: str) -> None:
        """IctviewError when the label file is not the one last saved. An editor saving
        right now renames its file a moment before it commits the new checksum, so a
        mismatch is confirmed once more after that moment before it is reported."""
        sql = """SELECT f.sha1 FROM label_files f JOIN exams e ON e.id = f.exam_id
                 WHERE f.labelset=? AND e.name=?"""
        for attempt in (0, 1):
            row = self.con.execute(sql, (labelset, exam)).fetchone()
            if row is None:
                return
            try:
                arrays.verify_file(self.label_path(labelset, exam), row[0])
                return
            except IctviewError:
                if attempt:
                    raise
                time.sleep(0.2)

    def sop_index(self) -> dict[str, tuple[int, int]]:
        """SOP Instance UID -> (exam id, slice index) for the whole workspace."""
        return {
            r[0]: (r[1], r[2]) for r in self.con.execute("SELECT sop_uid, exam_id, idx FROM slices")
        }

    # ---- exam reads and image labels ------------------------------------------------------

    def _insert_reads(self, exam_id: int, reads: dict[tuple[str, str], int], source: str) -> None:
        self.con.executemany(
            """INSERT OR REPLACE INTO exam_reads(exam_id, reader, finding, value, source)
               VALUES (?,?,?,?,?)""",
            [(exam_id, reader, finding, int(v), source) for (reader, finding), v in reads.items()],
        )

    def _insert_image_labels(self, exam_id: int, labels: dict[int, dict[str, int]], source: str) -> None:
        self.con.executemany(
            """INSERT OR REPLACE INTO image_labels(exam_id, slice_idx, finding, value, source)
               VALUES (?,?,?,?,?)""",
            [
                (exam_id, idx, finding, int(v), source)
                for idx, row in labels.items()
                for finding, v in row.items()
            ],
        )

    def attach_reads(self, exam: str, reads: dict[tuple[str, str], int], source: str) -> None:
        with transaction(self.con):
            self._insert_reads(self.exam(exam).id, reads, source)

    def attach_image_labels(self, exam: str, labels: dict[int, dict[str, int]], source: str) -> None:
        with transaction(self.con):
            self._insert_image_labels(self.exam(exam).id, labels, source)

    def exam_reads(self, exam: str) -> dict[tuple[str, str], int]:
        self.guard.require_labels(None, exam)
        rows = self.con.execute(
            "SELECT reader, finding, value FROM exam_reads WHERE exam_id=?", (self.exam(exam).id,)
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def exam_label(self, exam: str, finding: str = "ICH") -> int | None:
        """Majority vote of the readers for one finding (None when nobody read it)."""
        votes = [v for (_, f), v in self.exam_reads(exam).items() if f == finding]
        if not votes:
            return None
        return int(2 * sum(votes) > len(votes))

    def image_labels(self, exam: str) -> np.ndarray | None:
        """(n_slices, len(FINDINGS)) int8 matrix, -1 where unknown; None if no labels at all."""
        e = self.exam(exam)
        self.guard.require_labels(None, exam)
        rows = self.con.execute(
            "SELECT slice_idx, finding, value FROM image_labels WHERE exam_id=?", (e.id,)
        ).fetchall()
        if not rows:
            return None
        out = np.full((e.n_slices, len(FINDINGS)), -1, dtype=np.int8)
        col = {f: i for i, f in enumerate(FINDINGS)}
        for idx, finding, value in rows:
            if finding in col:
                out[idx, col[finding]] = value
        return out

    # ---- labelsets and label files --------------------------------------------------------

    def _ensure_labelset_row(self, name: str, kind: str, rater: str | None) -> None:
        if safe_name(name) != name:
            raise IctviewError(f"labelset name '{name}' may only use letters, digits, '.', '_', '-'")
        if rater:
            self.con.execute(
                "INSERT OR IGNORE INTO raters(name, created_at) VALUES (?,?)", (rater, utc_now())
            )
        self.con.execute(
            "INSERT OR IGNORE INTO labelsets(name, kind, rater, created_at) VALUES (?,?,?,?)",
            (name, kind, rater, utc_now()),
        )

    def ensure_labelset(self, name: str, kind: str = "reference", rater: str | None = None) -> None:
        with transaction(self.con):
            self._ensure_labelset_row(name, kind, rater)

    def _upsert_label_row(
        self, labelset: str, exam_id: int, by: str, seconds: float, labels: np.ndarray, now: str,
        sha1: str,
    ) -> None:
        n = int(np.count_nonzero((labels > 0) & (labels != 255)))
        self.con.execute(
            """INSERT INTO label_files(labelset, exam_id, revision, saved_at, saved_by,
                   seconds_on_task, voxels_labeled, sha1) VALUES (?,?,1,?,?,?,?,?)
               ON CONFLICT(labelset, exam_id) DO UPDATE SET revision=revision+1,
                   saved_at=excluded.saved_at, saved_by=excluded.saved_by,
                   seconds_on_task=seconds_on_task+excluded.seconds_on_task,
                   voxels_labeled=excluded.voxels_labeled, sha1=excluded.sha1""",
            (labelset, exam_id, now, by, seconds, n, sha1),
        )

    @staticmethod
    def _check_mask(exam: str, labels: np.ndarray, shape: tuple[int, ...]) -> None:
        if labels.shape != tuple(shape):
            raise IctviewError(f"{exam}: label volume shape {labels.shape} != exam shape {tuple(shape)}")
        if labels.dtype != np.uint8:
            raise IctviewError(f"{exam}: label volume must be uint8, got {labels.dtype}")

    def save_labels(
        self, labelset: str, exam: str, labels: np.ndarray, rater: str, seconds_on_task: float = 0.0
    ) -> None:
        """Replace the exam's label file atomically, then record the save."""
        e = self.exam(exam)
        self._check_mask(exam, labels, (e.n_slices, e.rows, e.cols))
        now = utc_now()
        sha1 = arrays.write_labels(
            self.label_path(labelset, exam), labels,
            {"exam": exam, "labelset": labelset, "saved_by": rater, "saved_at": now},
        )
        with transaction(self.con):
            self._ensure_labelset_row(labelset, "rater", rater)
            self._upsert_label_row(labelset, e.id, rater, seconds_on_task, labels, now, sha1)
            self._audit(self.con, rater, "save_labels", exam, labelset)

    def load_labels(self, labelset: str, exam: str) -> np.ndarray | None:
        """The saved label volume (None when there is none); BlindingError when the
        read guard hides it from this login (even when there is no file)."""
        self.guard.require_labels(labelset, exam)
        path = self.label_path(labelset, exam)
        if not path.exists():
            return None
        labels, _ = arrays.read_labels(path)
        return labels

    def label_slices(self, labelset: str, exam: str) -> arrays.SliceFile | None:
        """The saved label volume, to be read a slice at a time (None when there is none).
        The read guard is asked here, once for the file, as `load_labels` asks it."""
        self.guard.require_labels(labelset, exam)
        path = self.label_path(labelset, exam)
        if not path.exists():
            return None
        return arrays.SliceFile(path, "labels", "uint8")

    def labelset_names(self) -> set[str]:
        """Every labelset's name, hidden ones included (to refuse a name already taken)."""
        return {r[0] for r in self.con.execute("SELECT name FROM labelsets")}

    def labelsets(self) -> list[dict]:
        """The labelsets this login may see (the read guard hides unfinished studies'
        repetitions from everyone but their administrators and the rater's own)."""
        rows = self.con.execute(
            """SELECT l.name, l.kind, l.rater, COUNT(f.exam_id) AS exams
               FROM labelsets l LEFT JOIN label_files f ON f.labelset = l.name
               GROUP BY l.name ORDER BY l.name"""
        )
        rows = [dict(r) for r in rows]
        visible = set(self.guard.visible_labelsets([r["name"] for r in rows]))
        return [r for r in rows if r["name"] in visible]

    def label_status(self, labelset: str) -> dict[str, tuple[int, str, str]]:
        """exam -> (voxels labeled, saved_by, saved_at) for the exams with a file in
        `labelset` that this login may read (a voxel count is a label too)."""
        visible = set(self.labelset_exams(labelset))
        rows = self.con.execute(
            """SELECT e.name, f.voxels_labeled, f.saved_by, f.saved_at FROM label_files f
               JOIN exams e ON e.id = f.exam_id WHERE f.labelset = ?""",
            (labelset,),
        )
        return {r[0]: (int(r[1]), r[2] or "", r[3] or "") for r in rows if r[0] in visible}

    def labelset_exams(self, labelset: str) -> list[str]:
        """Exams with a label file in `labelset` that this login may read."""
        return self.guard.labelset_exams(labelset)[0]

    # ---- edit effort of exams started from a model (issue 16) -----------------------------

    def start_effort(self, labelset: str, exam: str, run: str, threshold: float,
                     min_voxels: int, proposal_voxels: int, by: str) -> None:
        """Record that `exam` in `labelset` starts from `run`'s proposal."""
        e = self.exam(exam)
        now = utc_now()
        with transaction(self.con) as con:
            con.execute(
                """INSERT OR REPLACE INTO label_effort(labelset, exam_id, run, threshold,
                       min_voxels, proposal_voxels, dice, started_at)
                   VALUES (?,?,?,?,?,?,1.0,?)""",
                (labelset, e.id, run, float(threshold), int(min_voxels), int(proposal_voxels),
                 now))
            self._audit(con, by, "start_from_model", exam,
                        json.dumps({"labelset": labelset, "run": run,
                                    "threshold": float(threshold)}, sort_keys=True))

    def record_effort(self, labelset: str, exam: str, effort: dict) -> None:
        """After a save: the edit effort against the proposal (Dice, voxels added/removed
        per class, steps); seconds on task are the label file's."""
        e = self.exam(exam)
        with transaction(self.con) as con:
            row = con.execute("SELECT seconds_on_task FROM label_files "
                              "WHERE labelset=? AND exam_id=?", (labelset, e.id)).fetchone()
            con.execute(
                """UPDATE label_effort SET dice=?, added=?, removed=?, changed=?, strokes=?,
                       seconds=?, saved_at=? WHERE labelset=? AND exam_id=?""",
                (float(effort["dice"]), json.dumps(effort["added"], sort_keys=True),
                 json.dumps(effort["removed"], sort_keys=True), int(effort["changed"]),
                 int(effort["strokes"]), float(row[0]) if row else 0.0, utc_now(),
                 labelset, e.id))

    def effort(self, labelset: str | None = None) -> list[dict]:
        """Edit-effort rows this login may read (an effort row describes labels: the
        read guard decides, per labelset and exam)."""
        sql = """SELECT f.*, e.name AS exam FROM label_effort f JOIN exams e ON e.id = f.exam_id"""
        args: tuple = ()
        if labelset is not None:
            sql, args = sql + " WHERE f.labelset=?", (labelset,)
        studies = self.guard.studies()
        out = []
        for r in self.con.execute(sql + " ORDER BY e.name", args):
            if self.guard.why_not_labels(r["labelset"], r["exam"], studies):
                continue
            d = dict(r)
            d["added"], d["removed"] = json.loads(d["added"]), json.loads(d["removed"])
            out.append(d)
        return out

    # ---- runs and audit -------------------------------------------------------------------

    def runs(self) -> list[dict]:
        return [dict(r) for r in self.con.execute("SELECT * FROM runs ORDER BY created_at")]

    def run(self, name: str) -> dict | None:
        row = self.con.execute("SELECT * FROM runs WHERE name=?", (name,)).fetchone()
        return dict(row) if row else None

    def create_run(self, name: str, kind: str, config: dict, parent: str | None = None) -> Path:
        """Register a run (or reuse it when resuming) and return its folder."""
        if safe_name(name) != name:
            raise IctviewError(f"run name '{name}' may only use letters, digits, '.', '_', '-'")
        now = utc_now()
        with transaction(self.con):
            row = self.con.execute("SELECT kind FROM runs WHERE name=?", (name,)).fetchone()
            if row and row[0] != kind:
                raise IctviewError(f"{self.root}: run '{name}' exists and is a {row[0]} run")
            if not row:
                self.con.execute(
                    """INSERT INTO runs(name, kind, status, parent, config, created_at, updated_at)
                       VALUES (?,?,?,?,?,?,?)""",
                    (name, kind, "created", parent, json.dumps(config, default=str), now, now),
                )
        d = self.run_dir(name)
        d.mkdir(parents=True, exist_ok=True)
        return d

    def set_run_status(self, name: str, status: str, config: dict | None = None) -> None:
        with transaction(self.con):
            if config is None:
                self.con.execute(
                    "UPDATE runs SET status=?, updated_at=? WHERE name=?", (status, utc_now(), name)
                )
            else:
                self.con.execute(
                    "UPDATE runs SET status=?, config=?, updated_at=? WHERE name=?",
                    (status, json.dumps(config, default=str), utc_now(), name),
                )

    def write_prediction(self, run: str, exam: str, pred: arrays.Prediction) -> None:
        self.record_predictions(run, {exam: self.write_prediction_file(run, exam, pred)})

    def write_prediction_file(self, run: str, exam: str, pred: arrays.Prediction) -> str:
        """The prediction file alone (atomic replace), no catalog row: what a rank > 0 of a
        multi-node run writes; returns the sha1 for rank 0's record_predictions."""
        e = self.exam(exam)
        shape = pred.targets.shape if pred.targets is not None else pred.prob.shape
        if tuple(shape) != (e.n_slices, e.rows, e.cols) or len(pred.slice_scores) != e.n_slices:
            raise IctviewError(f"{exam}: prediction shape {tuple(shape)} != exam shape")
        return arrays.write_prediction(self.prediction_path(run, exam), pred)

    def record_predictions(self, run: str, sha1s: dict[str, str]) -> None:
        """Record prediction files already written (exam -> sha1), in one transaction."""
        if not sha1s:
            return
        now = utc_now()
        with transaction(self.con):
            self.con.executemany(
                """INSERT INTO prediction_files(run, exam_id, sha1, written_at) VALUES (?,?,?,?)
                   ON CONFLICT(run, exam_id) DO UPDATE SET sha1=excluded.sha1,
                       written_at=excluded.written_at""",
                [(run, self.exam(exam).id, sha1, now) for exam, sha1 in sha1s.items()],
            )

    def record_unrecorded_predictions(self, run: str, exams: list[str]) -> list[str]:
        """Record, hashed now, the prediction files of `exams` in `run` that have no row
        (a rank of a killed multi-node run wrote them and never reported back)."""
        recorded = {r[0] for r in self.con.execute(
            """SELECT e.name FROM prediction_files p JOIN exams e ON e.id = p.exam_id
               WHERE p.run=?""", (run,))}
        late = {n: arrays.file_sha1(self.prediction_path(run, n)) for n in exams
                if n not in recorded and self.prediction_path(run, n).exists()}
        self.record_predictions(run, late)
        return sorted(late)

    def read_prediction(self, run: str, exam: str, pixels: bool = True,
                        targets_ok: bool = False) -> arrays.Prediction:
        self.guard.require_prediction(run, exam)
        return arrays.read_prediction(self.prediction_path(run, exam), pixels=pixels,
                                      targets_ok=targets_ok)

    def prediction_layout(self, run: str, exam: str) -> arrays.PredictionLayout:
        """Slice scores and what the file stores, without pixels; its `file` reads the pixels
        a slice at a time (the guard is asked here, once)."""
        self.guard.require_prediction(run, exam)
        return arrays.read_prediction_layout(self.prediction_path(run, exam))

    def predicted_exams(self, run: str) -> list[str]:
        """Exams with a prediction of `run` that this login may read."""
        have = sorted(p.stem for p in (self.root / "predictions" / run).glob("*.h5"))
        return self.guard.visible_predictions(run, have)

    @staticmethod
    def _audit(con: sqlite3.Connection, actor: str, action: str, exam: str | None, detail: str) -> None:
        audit.append(con, actor, action, exam, detail, at=utc_now())

    def audit(self, actor: str, action: str, exam: str | None = None, detail: str = "") -> None:
        with transaction(self.con):
            self._audit(self.con, actor, action, exam, detail)

    # ---- summary ------------------------------------------------------------------------

    def summary(self) -> dict:
        sites = {}
        for name, role in self.sites().items():
            row = self.con.execute(
                "SELECT COUNT(*), COALESCE(SUM(n_slices), 0) FROM exams WHERE site=?", (name,)
            ).fetchone()
            labeled_images = self.con.execute(
                """SELECT COUNT(*), COALESCE(SUM(value), 0) FROM image_labels il
                   JOIN exams e ON e.id = il.exam_id WHERE e.site=? AND il.finding='ICH'""",
                (name,),
            ).fetchone()
            read_exams = self.con.execute(
                """SELECT COUNT(*) FROM (SELECT exam_id FROM exam_reads r JOIN exams e
                   ON e.id = r.exam_id WHERE e.site=? AND r.finding='ICH' GROUP BY exam_id
                   HAVING 2 * SUM(value) > COUNT(*))""",
                (name,),
            ).fetchone()[0]
            n_read = self.con.execute(
                """SELECT COUNT(DISTINCT exam_id) FROM exam_reads r JOIN exams e
                   ON e.id = r.exam_id WHERE e.site=?""",
                (name,),
            ).fetchone()[0]
            warned = self.con.execute(
                "SELECT COUNT(*) FROM exams WHERE site=? AND warnings != '[]'", (name,)
            ).fetchone()[0]
            sites[name] = {
                "role": role,
                "exams": row[0],
                "slices": row[1],
                "image_labels": labeled_images[0],
                "positive_images": labeled_images[1],
                "read_exams": n_read,
                "positive_exams_by_majority": read_exams,
                "exams_with_warnings": warned,
            }
        roles = {r: {"exams": 0, "slices": 0} for r in ROLES}
        for s in sites.values():
            roles[s["role"]]["exams"] += s["exams"]
            roles[s["role"]]["slices"] += s["slices"]
        version = self.con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0]
        return {
            "workspace": str(self.root.resolve()),
            "schema_version": int(version),
            "sites": sites,
            "roles": roles,
            "labelsets": self.labelsets(),
            "runs": self.runs(),
        }
