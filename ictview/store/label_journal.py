"""Crash-safe autosave of a label volume being edited: a journal + a background saver.

Files, next to the label file WS/labels/<labelset>/<exam>.h5:
    <exam>.journal   append-only log of finished steps (strokes, undos, redos)
    <exam>.lock      flock held while the exam is open for editing (one editor at a time;
                     the kernel drops it when the process dies, even on kill -9)

At the end of every step the GUI thread appends one record to the journal and
fsyncs it (a few kB: the only disk wait). A saver thread applies the same record
to its own copy of the labels, writes the whole volume with
`Workspace.save_labels` (atomic replace, rater and time on task in the catalog),
then drops the records it saved from the journal. On open, the label file is
loaded and every journal record replayed in order.

Why replaying is safe without knowing which records the file already holds: a
record is "set these pixels to these values" (absolute, never relative), so
replaying records the file already contains yields the same pixels. A crash
between the label file replace and the journal trim therefore costs nothing.

Journal format (little endian):
    header  b"ICTVJRN1", u32 n, n bytes of JSON {"exam", "labelset", "shape"}
    record  u32 magic 0x4A524543, u32 payload length, u32 crc32(payload), payload
    payload u64 seq, f64 seconds, u32 n_patches, then per patch:
            u32 z, y0, x0, h, w, u8 kind (0: one value, 1: per-pixel values),
            packbits(mask) (ceil(h*w/8) bytes), then 1 byte value, or the values
            under the mask in C order (count(mask) bytes)
Damage, on open (the user is told through `LabelJournal.notices`):
- a record cut short at the end (kill -9 during the append) is the stroke in
  progress: it is cut off, as a crash is expected to lose it;
- a record failing its CRC with valid records after it (a flipped byte) drops
  only that record: the reader resynchronises on the next record that has the
  record magic and a valid CRC, the later finished strokes are kept, and the
  journal as it was is kept next to it as <exam>.journal.bad-<stamp>;
- a bad header (magic, JSON, or the shape of another volume) moves the journal
  aside to <exam>.journal.bad-<stamp> and starts a new one, so the exam stays
  editable; the file is kept for inspection.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from ictview.errors import IctviewError
from ictview.store.arrays import fsync_dir
from ictview.store.workspace import Workspace

if TYPE_CHECKING:
    from ictview.core.annotation import AnnotationModel

log = logging.getLogger(__name__)

MAGIC = b"ICTVJRN1"
REC_MAGIC = 0x4A524543
_REC = struct.Struct("<III")
_PAYLOAD = struct.Struct("<QdI")
_PATCH = struct.Struct("<IIIIIB")

# (z, y0, x0, mask bool (h, w), value: int or uint8 (h, w) array)
Patch = tuple[int, int, int, np.ndarray, "int | np.ndarray"]


@dataclass
class JournalRecord:
    seq: int
    seconds: float
    patches: list[Patch]


def apply_patches(labels: np.ndarray, patches: Sequence[Patch]) -> None:
    for z, y0, x0, mask, value in patches:
        h, w = mask.shape
        view = labels[z, y0 : y0 + h, x0 : x0 + w]
        view[mask] = value if np.isscalar(value) else np.asarray(value)[mask]


def encode_record(seq: int, seconds: float, patches: Sequence[Patch]) -> bytes:
    parts = [_PAYLOAD.pack(seq, seconds, len(patches))]
    for z, y0, x0, mask, value in patches:
        h, w = mask.shape
        scalar = np.isscalar(value)
        parts.append(_PATCH.pack(z, y0, x0, h, w, 0 if scalar else 1))
        parts.append(np.packbits(mask, axis=None).tobytes())
        if scalar:
            parts.append(bytes([int(value)]))
        else:
            parts.append(np.ascontiguousarray(np.asarray(value, np.uint8)[mask]).tobytes())
    payload = b"".join(parts)
    return _REC.pack(REC_MAGIC, len(payload), zlib.crc32(payload)) + payload


def decode_payload(payload: bytes) -> JournalRecord:
    seq, seconds, n = _PAYLOAD.unpack_from(payload, 0)
    pos = _PAYLOAD.size
    patches: list[Patch] = []
    for _ in range(n):
        z, y0, x0, h, w, kind = _PATCH.unpack_from(payload, pos)
        pos += _PATCH.size
        nbits = (h * w + 7) // 8
        mask = np.unpackbits(np.frombuffer(payload, np.uint8, nbits, pos), count=h * w)
        mask = mask.astype(bool).reshape(h, w)
        pos += nbits
        if kind == 0:
            value: int | np.ndarray = payload[pos]
            pos += 1
        else:
            k = int(mask.sum())
            value = np.zeros((h, w), np.uint8)
            value[mask] = np.frombuffer(payload, np.uint8, k, pos)
            pos += k
        patches.append((z, y0, x0, mask, value))
    if pos != len(payload):
        raise ValueError("trailing bytes in journal record")
    return JournalRecord(seq, seconds, patches)


@dataclass
class JournalScan:
    """What a journal's bytes hold; nothing here touches the file."""

    info: dict | None = None  # the header JSON
    header_error: str = ""  # why the header is unusable ("" when it is fine)
    header_len: int = 0
    records: list[JournalRecord] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start, end) of each record
    damaged: list[tuple[int, int]] = field(default_factory=list)  # (start, n bytes) skipped
    torn_tail: int = 0  # bytes of an unfinished last record


_REC_MAGIC_BYTES = struct.pack("<I", REC_MAGIC)


def _record_at(data: bytes, pos: int) -> tuple[JournalRecord | None, int]:
    """(record, end) when a whole valid record starts at pos, else (None, 0)."""
    if pos + _REC.size > len(data):
        return None, 0
    magic, length, crc = _REC.unpack_from(data, pos)
    end = pos + _REC.size + length
    if magic != REC_MAGIC or end > len(data):
        return None, 0
    body = data[pos + _REC.size : end]
    if zlib.crc32(body) != crc:
        return None, 0
    try:
        return decode_payload(body), end
    except (ValueError, struct.error):
        return None, 0


def _next_record(data: bytes, pos: int) -> int | None:
    """Offset of the next valid record after a damaged one (None: there is none)."""
    while True:
        pos = data.find(_REC_MAGIC_BYTES, pos)
        if pos < 0:
            return None
        if _record_at(data, pos)[0] is not None:
            return pos
        pos += 1


def scan_journal(data: bytes) -> JournalScan:
    scan = JournalScan()
    if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + 4:
        scan.header_error = "not an ictview label journal (bad magic)"
        return scan
    (n,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4 + n
    try:
        info = json.loads(data[len(MAGIC) + 4 : start]) if start <= len(data) else None
    except ValueError:
        info = None
    if not isinstance(info, dict):
        scan.header_error = "unreadable journal header"
        return scan
    scan.info, scan.header_len = info, start
    pos = start
    while pos < len(data):
        rec, end = _record_at(data, pos)
        if rec is not None:
            scan.records.append(rec)
            scan.spans.append((pos, end))
            pos = end
            continue
        nxt = _next_record(data, pos + 1)
        if nxt is None:
            scan.torn_tail = len(data) - pos
            break
        scan.damaged.append((pos, nxt - pos))
        pos = nxt
    return scan


BAD_MARK = ".bad-"


def _aside_path(path: Path) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest, k = path.with_name(f"{path.name}{BAD_MARK}{stamp}"), 1
    while dest.exists():
        k += 1
        dest = path.with_name(f"{path.name}{BAD_MARK}{stamp}-{k}")
    return dest


def set_aside(path: Path) -> Path:
    """Rename a journal to <name>.bad-<UTC stamp> (kept for inspection); returns the new path."""
    dest = _aside_path(path)
    os.replace(path, dest)
    fsync_dir(path.parent)
    return dest


class LabelJournal:
    """The append-only journal of one exam in one labelset (see the module doc).

    Opening takes an exclusive lock (IctviewError if another process edits the
    exam), reads the valid records (`records`) and cuts off a torn tail.
    append() is called by the editing thread, discard_through() by the saver
    thread; a lock keeps them from interleaving.
    """

    def __init__(self, path: Path, exam: str, labelset: str, shape: tuple[int, int, int]):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._header_info = {"exam": exam, "labelset": labelset, "shape": list(shape)}
        self._lock = threading.Lock()
        self.notices: list[str] = []  # damage found on open, for the user
        self._lock_fh = open(self.path.with_suffix(".lock"), "a+")
        try:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_fh.close()
            raise IctviewError(
                f"{self.path.with_suffix('.h5')}: exam is open for editing in another ictview"
            ) from None
        try:
            self.records, self._ends = self._read_or_create()
        except BaseException:
            self.close()
            raise

    # -- file handling --

    def _header_bytes(self) -> bytes:
        info = json.dumps(self._header_info).encode()
        return MAGIC + struct.pack("<I", len(info)) + info

    def _read_or_create(self) -> tuple[list[JournalRecord], deque]:
        header = self._header_bytes()
        if not self.path.exists() or self.path.stat().st_size < len(MAGIC) + 4:
            self._rewrite(header)
            return [], deque()
        data = self.path.read_bytes()
        scan = scan_journal(data)
        problem = scan.header_error
        if not problem and list(scan.info.get("shape", [])) != self._header_info["shape"]:
            problem = (f"journal is for a volume of shape {scan.info.get('shape')}, "
                       f"the exam has {self._header_info['shape']}")
        if problem:
            kept = set_aside(self.path)
            self.notices.append(
                f"{self.path.name}: {problem}; moved aside to {kept.name} (its unsaved strokes "
                "were not recovered) and a new journal started"
            )
            log.warning("%s: %s; moved to %s", self.path, problem, kept)
            self._rewrite(header)
            return [], deque()
        if scan.damaged:
            # keep the good records, atomically; the damaged original stays for inspection
            kept = _aside_path(self.path)
            kept.write_bytes(data)
            good = b"".join(data[a:b] for a, b in scan.spans)
            self._rewrite(data[: scan.header_len] + good)
            n_bad = len(scan.damaged)
            self.notices.append(
                f"{self.path.name}: {n_bad} damaged journal record(s) dropped, "
                f"{len(scan.records)} stroke(s) recovered; the damaged journal is kept as "
                f"{kept.name}"
            )
            log.warning("%s: dropped %d damaged record(s); original kept as %s",
                        self.path, n_bad, kept)
            ends, pos = deque(), scan.header_len
            for rec, (a, b) in zip(scan.records, scan.spans):
                pos += b - a
                ends.append((rec.seq, pos))
            self._header_len = scan.header_len
            return scan.records, ends
        self._fh = open(self.path, "r+b")
        if scan.torn_tail:
            log.warning("%s: dropped %d bytes of an unfinished journal record",
                        self.path, scan.torn_tail)
            self._fh.truncate(len(data) - scan.torn_tail)
            os.fsync(self._fh.fileno())
        self._fh.seek(0, os.SEEK_END)
        self._header_len = scan.header_len
        return scan.records, deque((rec.seq, b) for rec, (_, b) in zip(scan.records, scan.spans))

    def _rewrite(self, content: bytes) -> None:
        """Replace the journal by `content` atomically (temp file, fsync, rename)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)
        old = getattr(self, "_fh", None)
        self._fh = open(self.path, "r+b")
        self._fh.seek(0, os.SEEK_END)
        if old is not None:
            old.close()
        self._header_len = len(self._header_bytes())

    # -- API --

    @property
    def last_seq(self) -> int:
        return self._ends[-1][0] if self._ends else 0

    def __len__(self) -> int:
        return len(self._ends)

    def append(self, seq: int, seconds: float, patches: Sequence[Patch]) -> None:
        """Write one record and fsync: once this returns the step survives a crash."""
        rec = encode_record(seq, seconds, patches)
        with self._lock:
            self._fh.write(rec)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._ends.append((seq, self._fh.tell()))

    def discard_through(self, seq: int) -> None:
        """Drop the records with seq <= `seq` (they are in the label file now)."""
        with self._lock:
            cut = None
            while self._ends and self._ends[0][0] <= seq:
                cut = self._ends.popleft()[1]
            if cut is None:
                return
            if not self._ends:
                # nothing newer: cut back to the header in place
                self._fh.truncate(self._header_len)
                self._fh.seek(0, os.SEEK_END)
                os.fsync(self._fh.fileno())
                return
            # newer records arrived during the save: keep them, atomically
            self._fh.flush()
            with open(self.path, "rb") as fh:
                fh.seek(cut)
                tail = fh.read()
            header = self._header_bytes()
            shift = cut - len(header)
            self._rewrite(header + tail)
            self._ends = deque((s, end - shift) for s, end in self._ends)

    def close(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()
            self._fh = None
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None


class LabelSaver:
    """Journals steps on the caller's thread and saves the label file on its own thread.

    `submit(seq, seconds, patches)` appends to the journal (fsync) and queues the
    save; the saver thread applies queued patches to its copy of the labels,
    coalesces everything queued into one `Workspace.save_labels`, trims the
    journal and calls `on_saved(seq)` (from the saver thread).
    """

    def __init__(
        self,
        ws_root: Path,
        exam: str,
        labelset: str,
        rater: str,
        labels: np.ndarray,
        journal: LabelJournal,
    ):
        self.ws_root, self.exam, self.labelset, self.rater = Path(ws_root), exam, labelset, rater
        self.journal = journal
        self._shadow = labels.copy()  # the saver's own copy: the GUI array is never read here
        self.on_saved: list[Callable[[int], None]] = []
        self.error: Exception | None = None
        self.saved_seq = 0
        self._queue: deque = deque()
        self._cond = threading.Condition()
        self._pending = 0
        self._stop = False
        self._seconds_carry = 0.0  # time of failed saves, retried with the next one
        # started from a model: (the labels right after the proposal, its revision); each
        # save then records the edit effort against it (ictview/core/proposal.py)
        self.effort_base: tuple[np.ndarray, int] | None = None
        self._thread = threading.Thread(target=self._run, name=f"label-saver-{exam}", daemon=True)
        self._thread.start()

    def file_exists(self) -> bool:
        return (self.ws_root / "labels" / self.labelset / f"{self.exam}.h5").exists()

    def submit(
        self, seq: int, seconds: float, patches: Sequence[Patch], journal: bool = True
    ) -> None:
        """Journal (unless journal=False: the step is already in the journal) and queue a save."""
        if journal and patches:
            self.journal.append(seq, seconds, patches)
        with self._cond:
            self._queue.append((seq, seconds, patches))
            self._pending += 1
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted is saved (or failed: see `error`)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float | None = None) -> None:
        self.flush(timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout)
        self.journal.close()

    def _run(self) -> None:
        ws: Workspace | None = None
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(lambda: self._queue or self._stop)
                    if not self._queue:
                        return
                    batch = list(self._queue)
                    self._queue.clear()
                seconds = self._seconds_carry
                for _, secs, patches in batch:
                    apply_patches(self._shadow, patches)
                    seconds += secs
                seq = batch[-1][0]
                try:
                    if ws is None:
                        ws = Workspace.open(self.ws_root)  # sqlite: one connection per thread
                    ws.save_labels(self.labelset, self.exam, self._shadow, self.rater, seconds)
                    self._seconds_carry = 0.0
                    self._record_effort(ws, seq)
                    self.journal.discard_through(seq)
                    self.saved_seq = seq
                    self.error = None
                    saved = True
                except Exception as e:  # noqa: BLE001 - the journal still holds the work
                    log.error("%s/%s: autosave failed: %s", self.labelset, self.exam, e)
                    self.error, self._seconds_carry, saved = e, seconds, False
                if saved:
                    for cb in list(self.on_saved):
                        try:
                            cb(seq)
                        except Exception:  # noqa: BLE001 - a view's bug must not stop saving
                            log.exception("on_saved callback failed")
                with self._cond:
                    self._pending -= len(batch)
                    self._cond.notify_all()
        finally:
            if ws is not None:
                ws.close()


    def _record_effort(self, ws: Workspace, seq: int) -> None:
        base = self.effort_base
        if base is None:
            return
        from ictview.core.proposal import edit_effort

        effort = edit_effort(base[0], self._shadow)
        effort["strokes"] = max(seq - base[1], 0)
        ws.record_effort(self.labelset, self.exam, effort)


def journal_path(ws: Workspace, labelset: str, exam: str) -> Path:
    return ws.label_path(labelset, exam).with_suffix(".journal")


def open_for_editing(
    model_cls: "type[AnnotationModel]",
    workspace: "Workspace | Path | str",
    exam: str,
    labelset: str,
    rater: str,
    *,
    start_from: str | None = None,
    history_steps: int = 200,
    idle_cap_s: float = 60.0,
    clock: Callable[[], float] | None = None,
    volume=None,
) -> "AnnotationModel":
    """AnnotationModel.open: load, lock, replay the journal, start the saver.
    `volume`: the exam's StoredVolume when the caller has it already (the GUI's cache)."""
    own = not isinstance(workspace, Workspace)
    ws = Workspace.open(workspace) if own else workspace
    try:
        if not rater.strip():
            raise IctviewError(f"{ws.root}: a rater name is required to edit labels")
        e = ws.exam(exam)
        # blinding first: nothing of a hidden labelset (file or journal) is read
        ws.guard.require_labels(labelset, exam)
        if start_from:
            ws.guard.require_labels(start_from, exam)
        row = ws.con.execute(
            "SELECT kind, rater FROM labelsets WHERE name=?", (labelset,)
        ).fetchone()
        # the owner is a display name: compared case-folded and trimmed
        if row is not None and (row["rater"] or "").strip().casefold() != rater.strip().casefold():
            owner = f"rater '{row['rater']}'" if row["rater"] else f"no rater ({row['kind']})"
            raise IctviewError(
                f"{ws.root}: labelset '{labelset}' belongs to {owner}, not '{rater}': "
                f"edit a labelset of your own (start_from='{labelset}' copies it)"
            )
        vol = ws.read_volume(exam) if volume is None else volume
        shape = vol.hu.shape
        journal = LabelJournal(journal_path(ws, labelset, exam), exam, labelset, shape)
        try:
            labels = ws.load_labels(labelset, exam)
            seeded = False
            if labels is None and start_from:
                labels = ws.load_labels(start_from, exam)
                if labels is None:
                    raise IctviewError(
                        f"{ws.root}: labelset '{start_from}' has no labels for '{exam}'"
                    )
                seeded = True
            if labels is None:
                labels = np.zeros(shape, np.uint8)
            if labels.shape != shape:
                raise IctviewError(
                    f"{ws.label_path(labelset, exam)}: label shape {labels.shape} != exam {shape}"
                )
            if seeded:
                # durable before any stroke is journaled on top of it
                ws.save_labels(labelset, exam, labels, rater, 0.0)
            recovered_seconds = 0.0
            for rec in journal.records:
                apply_patches(labels, rec.patches)
                recovered_seconds += rec.seconds
            row = ws.con.execute(
                "SELECT seconds_on_task FROM label_files WHERE labelset=? AND exam_id=?",
                (labelset, e.id),
            ).fetchone()
            prior_seconds = float(row[0]) if row else 0.0
        except BaseException:
            journal.close()
            raise
        kwargs = {} if clock is None else {"clock": clock}
        model = model_cls(
            vol.hu, labels, e.spacing, exam=exam, labelset=labelset, rater=rater,
            geometry=vol.geometry, history_steps=history_steps, idle_cap_s=idle_cap_s, **kwargs,
        )
        saver = LabelSaver(ws.root, exam, labelset, rater, labels, journal)
        model.recovered_steps = len(journal.records)
        model.journal_notices = list(journal.notices)
        model._attach_saver(saver, journal.last_seq, prior_seconds + recovered_seconds)
        if journal.records:
            # write the recovered labels now; the records stay until that save is done
            saver.submit(journal.last_seq, recovered_seconds, [], journal=False)
            model.saved_revision = 0
        journal.records = []  # replayed; no need to keep them in memory
        ws.audit(rater, "open_labels", exam, f"{labelset} recovered={model.recovered_steps}")
        return model
    finally:
        if own:
            ws.close()


def open_read_only(
    model_cls: "type[AnnotationModel]",
    workspace: "Workspace | Path | str",
    exam: str,
    labelset: str,
    volume=None,
) -> "AnnotationModel":
    """AnnotationModel.open(read_only=True): the label file as saved, no lock, no saver."""
    own = not isinstance(workspace, Workspace)
    ws = Workspace.open(workspace) if own else workspace
    try:
        e = ws.exam(exam)
        vol = ws.read_volume(exam) if volume is None else volume
        labels = ws.load_labels(labelset, exam)
        if labels is None:
            labels = np.zeros(vol.hu.shape, np.uint8)
        model = model_cls(vol.hu, labels, e.spacing, exam=exam, labelset=labelset,
                          geometry=vol.geometry)
        model.read_only = True
        return model
    finally:
        if own:
            ws.close()
