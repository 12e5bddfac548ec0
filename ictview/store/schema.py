"""The workspace catalog schema and its migrations.

The catalog is the index of the workspace: an exam exists when its row exists, and
its row is committed only after its volume file is durable on disk. Versions only
go up; each migration is a list of steps run in one transaction: SQL statements,
or functions of the connection where a step needs Python (hashing, say).
"""

from __future__ import annotations

from typing import Callable, Union

from ictview.store.audit import migrate_to_chain

SCHEMA_VERSION = 5

Step = Union[str, Callable]

_V1 = [
    """CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE sites (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('labeled','unlabeled','validation','test')),
        created_at TEXT NOT NULL)""",
    """CREATE TABLE exams (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        site TEXT NOT NULL REFERENCES sites(name),
        patient_id TEXT NOT NULL,
        accession_number TEXT NOT NULL DEFAULT '',
        study_date TEXT NOT NULL DEFAULT '',
        study_uid TEXT NOT NULL UNIQUE,
        series_uid TEXT NOT NULL,
        series_description TEXT NOT NULL DEFAULT '',
        n_slices INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        cols INTEGER NOT NULL,
        spacing_z REAL NOT NULL, spacing_y REAL NOT NULL, spacing_x REAL NOT NULL,
        slice_thickness REAL,
        tilt_degrees REAL NOT NULL DEFAULT 0,
        manufacturer TEXT NOT NULL DEFAULT '',
        kernel TEXT NOT NULL DEFAULT '',
        volume_file TEXT NOT NULL,
        volume_sha1 TEXT NOT NULL,
        warnings TEXT NOT NULL DEFAULT '[]',
        source TEXT NOT NULL DEFAULT '',
        imported_at TEXT NOT NULL)""",
    """CREATE TABLE slices (
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        sop_uid TEXT NOT NULL UNIQUE,
        position REAL NOT NULL,
        PRIMARY KEY (exam_id, idx))""",
    # every series seen in the exam's study, chosen or not, with why not
    """CREATE TABLE series (
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        series_uid TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        slice_thickness REAL,
        n_files INTEGER NOT NULL,
        chosen INTEGER NOT NULL,
        reason TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (exam_id, series_uid))""",
    # readers' exam-level reads (CQ500 reads.csv): one row per reader and finding
    """CREATE TABLE exam_reads (
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        reader TEXT NOT NULL,
        finding TEXT NOT NULL,
        value INTEGER NOT NULL CHECK (value IN (0, 1)),
        source TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (exam_id, reader, finding))""",
    # image-level labels (RSNA 2019): one row per slice and finding
    """CREATE TABLE image_labels (
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        slice_idx INTEGER NOT NULL,
        finding TEXT NOT NULL,
        value INTEGER NOT NULL CHECK (value IN (0, 1)),
        source TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (exam_id, slice_idx, finding))""",
    """CREATE TABLE raters (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)""",
    """CREATE TABLE labelsets (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL DEFAULT 'reference',
        rater TEXT REFERENCES raters(name),
        description TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL)""",
    # one row per labelset and exam; the file itself is replaced atomically on each save
    """CREATE TABLE label_files (
        labelset TEXT NOT NULL REFERENCES labelsets(name),
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        revision INTEGER NOT NULL DEFAULT 1,
        saved_at TEXT NOT NULL,
        saved_by TEXT NOT NULL DEFAULT '',
        seconds_on_task REAL NOT NULL DEFAULT 0,
        voxels_labeled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (labelset, exam_id))""",
    """CREATE TABLE runs (
        name TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'created',
        parent TEXT,
        config TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        exam TEXT,
        detail TEXT NOT NULL DEFAULT '')""",
    # the audit log is append-only: the database itself refuses edits
    """CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END""",
    """CREATE INDEX image_labels_finding ON image_labels(finding, value)""",
]

# v2: test-retest studies (blinded repeated segmentation with washout) and the
# radiologist's ranker threshold inspection
_V2 = [
    """CREATE TABLE retest_studies (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        rater TEXT NOT NULL,
        exams TEXT NOT NULL,              -- JSON list of exam names
        repetitions INTEGER NOT NULL CHECK (repetitions >= 2),
        washout_days REAL NOT NULL CHECK (washout_days >= 0),
        seed INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL)""",
    """CREATE TABLE retest_sessions (
        study_id INTEGER NOT NULL REFERENCES retest_studies(id),
        repetition INTEGER NOT NULL,      -- 1..repetitions
        labelset TEXT NOT NULL UNIQUE,
        exam_order TEXT NOT NULL,         -- JSON list: the order the rater must follow
        started_at TEXT,
        ended_at TEXT,
        override_reason TEXT,
        override_by TEXT,
        PRIMARY KEY (study_id, repetition))""",
    """CREATE TABLE ranker_judgments (
        run TEXT NOT NULL,                -- the pseudo-label run
        exam TEXT NOT NULL,
        slice_idx INTEGER NOT NULL,
        rater TEXT NOT NULL,
        judgment INTEGER NOT NULL CHECK (judgment IN (0, 1)),  -- 1 true positive
        c_percent REAL,                   -- the cut the image was shown for
        judged_at TEXT NOT NULL,
        PRIMARY KEY (run, exam, slice_idx, rater))""",
    """CREATE TABLE ranker_choices (
        run TEXT PRIMARY KEY,             -- the pseudo-label run the next student uses
        c_percent REAL NOT NULL CHECK (c_percent > 0 AND c_percent <= 100),
        k_hi REAL NOT NULL,
        k_lo REAL NOT NULL CHECK (k_lo <= k_hi),
        chosen_by TEXT NOT NULL,
        chosen_at TEXT NOT NULL)""",
]

# v3: integrity. The audit log becomes a hash chain (audit.py); label and prediction
# files get the checksum the catalog already kept for volumes. A NULL sha1 is a file
# saved before v3: `ictview check` says it cannot verify it, and its next save records it.
_V3: list[Step] = [
    migrate_to_chain,
    """ALTER TABLE label_files ADD COLUMN sha1 TEXT""",
    """CREATE TABLE prediction_files (
        run TEXT NOT NULL,
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        sha1 TEXT NOT NULL,
        written_at TEXT NOT NULL,
        PRIMARY KEY (run, exam_id))""",
]

# v4: identity and blinding (issue 11). Access is decided by OS logins, never typed
# names: the rater's login (NULL until known: then every login that is not an
# administrator is treated as possibly the rater), the study's administrators, and
# how a study was closed early (aborted / unblinded, by whom, when). Studies planned
# before v4 get their planner (created_by) as administrator.
_V4: list[Step] = [
    """ALTER TABLE retest_studies ADD COLUMN rater_login TEXT""",
    """ALTER TABLE retest_studies ADD COLUMN closed_at TEXT""",
    """ALTER TABLE retest_studies ADD COLUMN closed_how TEXT
        CHECK (closed_how IS NULL OR closed_how IN ('aborted', 'unblinded'))""",
    """ALTER TABLE retest_studies ADD COLUMN closed_by TEXT""",
    """CREATE TABLE retest_admins (
        study_id INTEGER NOT NULL REFERENCES retest_studies(id),
        login TEXT NOT NULL,
        PRIMARY KEY (study_id, login))""",
    """INSERT INTO retest_admins(study_id, login) SELECT id, created_by FROM retest_studies""",
]

# v5: model-assisted labeling (issue 16). One row per labelset and exam started from a
# model's proposal: how the proposal was made (run, its pixel threshold, minimum component
# size: enough to recompute it) and, updated on each save, the edit effort against it
# (Dice, voxels added / removed per class as JSON {code: n}, steps, seconds on task).
_V5: list[Step] = [
    """CREATE TABLE label_effort (
        labelset TEXT NOT NULL,
        exam_id INTEGER NOT NULL REFERENCES exams(id) ON DELETE CASCADE,
        run TEXT NOT NULL,
        threshold REAL NOT NULL,
        min_voxels INTEGER NOT NULL,
        proposal_voxels INTEGER NOT NULL,
        dice REAL,
        added TEXT NOT NULL DEFAULT '{}',
        removed TEXT NOT NULL DEFAULT '{}',
        changed INTEGER NOT NULL DEFAULT 0,
        strokes INTEGER NOT NULL DEFAULT 0,
        seconds REAL NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL,
        saved_at TEXT,
        PRIMARY KEY (labelset, exam_id))""",
]

MIGRATIONS: dict[int, list[Step]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5}
