"""AnnotationModel: the state of one exam being labeled, without Qt.

The GUI is a thin view: it reads attributes, calls methods, and subscribes to
three callback lists:

- `on_labels_changed(z_range)`: labels changed on slices z_range[0] <= z < z_range[1]
  (half-open), emitted on the calling (GUI) thread after each edit, undo, redo.
  During the callbacks `changed_diffs` holds the SliceDiffs of that change (a view
  can repaint just their bounding boxes).
- `on_saved(revision)`: the background saver has durably written the label file
  up to `revision`. Emitted FROM THE SAVER THREAD: a Qt view must hop to its own
  thread (emit a Qt signal, queued connection) before touching widgets, and must
  not call flush()/close() from it.
- `on_state_changed()`: a tool/display setting changed (class, brush, HU range,
  mode, opacity, window, ...) or undo/redo availability changed.

Editing: `begin_stroke()`, any number of `paint_to(z, y, x)` (one mouse drag),
`end_stroke()`. end_stroke is the autosave point: the stroke is appended and
fsynced to the exam's journal (the only disk wait on the caller's thread), then
the full label volume is written by a background thread. `flood_fill` and
`polygon_fill` are single steps. `undo()` / `redo()` are journaled and saved too.

Coordinates are voxel indices (z, y, x) of the (z, y, x) arrays; y/x may be floats
(the brush centre is rounded to the nearest pixel). The 2D tools take a `plane`
(axial, coronal, sagittal: `ictview.core.mpr`): the brush disk, polygon or fill lies
in that plane through the voxel, whichever view it came from; every change is
recorded as per-axial-slice diffs, so undo and the journal do not care which.
`region_grow` (3D fill) and `fill_between_slices` are single steps over the volume.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ictview.core import paint, volume_paint
from ictview.core.history import Stroke, UndoHistory
from ictview.core.mpr import AXIAL, PLANE_AXES, axial_diffs, native_view, to_native
from ictview.core.labels import BY_VALUE, IGNORE, LABEL_CLASSES
from ictview.core.window import WINDOW_PRESETS

if TYPE_CHECKING:  # the store is imported lazily so the core stays free of file formats
    from ictview.core.geometry import Geometry
    from ictview.store.label_journal import LabelSaver
    from ictview.store.workspace import Workspace

TOOLS = ("brush", "eraser", "fill", "grow", "polygon")  # grow: 3D fill
FILL_MODES = ("fill", "outline")
CLASS_VALUES = tuple(c.value for c in LABEL_CLASSES)  # 1..5
DEFAULT_HU_RANGE = (40.0, 90.0)  # fresh blood
DEFAULT_RADIUS_MM = 3.0
MIN_RADIUS_PX = 0.5
MAX_RADIUS_PX = 100.0
DEFAULT_IDLE_CAP_S = 60.0


def rater_labelset(rater: str) -> str:
    """The default labelset name of a rater (labelsets are per rater). Rater names are
    display names, equal case-folded and trimmed: 'Dr-Lee ' and 'dr-lee' share one."""
    from ictview.store.workspace import safe_name

    return safe_name(f"rater-{rater.strip().casefold()}")


def _label_counts(labels: np.ndarray) -> np.ndarray:
    """Voxels per label value (256 bins). Only slices holding labels are counted voxel by
    voxel: a 40 x 512 x 512 exam with one lesion takes milliseconds, not a full bincount."""
    counts = np.zeros(256, np.int64)
    flat = labels.reshape(labels.shape[0], -1)
    for z in np.flatnonzero(flat.any(axis=1)):
        counts += np.bincount(flat[z], minlength=256)
    counts[0] += labels.size - counts.sum()
    return counts


class _Setting:
    """A model attribute that validates on set and emits on_state_changed on change."""

    def __init__(self, default: Any, check: Callable[[Any], Any] | None = None):
        self.default, self.check = default, check

    def __set_name__(self, owner, name):
        self.name = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.default)

    def __set__(self, obj, value):
        if self.check is not None:
            value = self.check(value)
        if obj.__dict__.get(self.name, self.default) != value:
            obj.__dict__[self.name] = value
            obj._emit_state()


def _check_class(v) -> int:
    v = int(v)
    if v not in CLASS_VALUES:
        raise ValueError(f"label class must be one of {CLASS_VALUES}, got {v}")
    return v


def _check_range(r) -> tuple[float, float]:
    lo, hi = (float(r[0]), float(r[1]))
    if lo > hi:
        raise ValueError(f"HU range must have lo <= hi, got {r}")
    return (lo, hi)


def _check_choice(choices):
    def check(v):
        if v not in choices:
            raise ValueError(f"must be one of {choices}, got {v!r}")
        return v
    return check


def _check_classes(v) -> frozenset:
    return frozenset(_check_class(c) for c in v)


def _check_connectivity(v) -> int:
    v = int(v)
    if v not in volume_paint.CONNECTIVITY:
        raise ValueError(f"connectivity must be 6 or 26, got {v}")
    return v


def _check_unit(v) -> float:
    return float(min(max(float(v), 0.0), 1.0))


def _check_window(w) -> tuple[float, float]:
    return (float(w[0]), max(float(w[1]), 1.0))


class AnnotationModel:
    """One exam's labels in one labelset, edited by one rater.

    Construct with `AnnotationModel.open(...)` for a workspace-backed model
    (journal + autosave); the plain constructor gives an in-memory model (tests,
    benchmarks) that saves nothing.
    """

    # ---- tool and display settings (setting one emits on_state_changed) ----
    label_value = _Setting(CLASS_VALUES[0], _check_class)  # current class 1..5
    tool = _Setting("brush", _check_choice(TOOLS))
    hu_limited = _Setting(False, bool)  # brush/polygon only paint pixels inside hu_range
    hu_range = _Setting(DEFAULT_HU_RANGE, _check_range)  # inclusive; also the flood fill range
    protect_others = _Setting(False, bool)  # False = overwrite other classes
    fill_mode = _Setting("fill", _check_choice(FILL_MODES))  # overlay display
    opacity = _Setting(0.5, _check_unit)  # overlay display
    labels_visible = _Setting(True, bool)
    window = _Setting(WINDOW_PRESETS["brain"], _check_window)  # (center, width) HU
    hidden_classes = _Setting(frozenset(), _check_classes)  # not drawn (display only)
    locked_classes = _Setting(frozenset(), _check_classes)  # never painted over nor erased
    grow_connectivity = _Setting(6, _check_connectivity)  # 3D fill neighbours: 6 or 26
    grow_max_voxels = _Setting(volume_paint.DEFAULT_MAX_VOXELS, int)  # 3D fill cap

    def __init__(
        self,
        hu: np.ndarray,
        labels: np.ndarray | None = None,
        spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
        *,
        exam: str = "",
        labelset: str = "",
        rater: str = "",
        geometry: "Geometry | None" = None,
        history_steps: int = 200,
        idle_cap_s: float = DEFAULT_IDLE_CAP_S,
        clock: Callable[[], float] = time.monotonic,
    ):
        if hu.ndim != 3:
            raise ValueError(f"hu must be (z, y, x), got shape {hu.shape}")
        self.hu = hu
        self.labels = np.zeros(hu.shape, np.uint8) if labels is None else labels
        if self.labels.shape != hu.shape or self.labels.dtype != np.uint8:
            raise ValueError("labels must be uint8 with the shape of hu")
        self.spacing = tuple(float(s) for s in spacing)  # (z, y, x) mm
        self.voxel_ml = float(np.prod(self.spacing)) / 1000.0
        self.exam, self.labelset, self.rater = exam, labelset, rater
        self.geometry = geometry
        self.read_only = False  # set by open(read_only=True): edit methods do nothing
        self.history = UndoHistory(max_steps=history_steps)
        self.on_labels_changed: list[Callable[[tuple[int, int]], None]] = []
        self.on_saved: list[Callable[[int], None]] = []
        self.on_state_changed: list[Callable[[], None]] = []
        self.changed_diffs: list[paint.SliceDiff] = []  # of the change being announced
        self._radius_mm = DEFAULT_RADIUS_MM
        self._counts = _label_counts(self.labels)
        # stroke in progress
        self._stroke_erase = False
        self._last_point: tuple[int, float, float] | None = None
        # autosave
        self.revision = 0  # increases with every journaled step
        self.saved_revision = 0  # last revision the saver wrote
        self.recovered_steps = 0  # journal records replayed at open (after a crash)
        self.journal_notices: list[str] = []  # journal damage found at open, for the user
        self._saver: LabelSaver | None = None
        self._closed = False
        # time on task
        self._clock = clock
        self.idle_cap_s = float(idle_cap_s)
        self._last_activity = clock()
        self._pending_seconds = 0.0  # active time not yet handed to the saver
        self._saved_seconds = 0.0  # time already recorded in the catalog + handed to the saver

    # ---- opening and closing ----

    @classmethod
    def open(
        cls,
        workspace: "Workspace | Path | str",
        exam: str,
        labelset: str,
        rater: str,
        *,
        start_from: str | None = None,
        read_only: bool = False,
        history_steps: int = 200,
        idle_cap_s: float = DEFAULT_IDLE_CAP_S,
        clock: Callable[[], float] = time.monotonic,
        volume=None,
    ) -> "AnnotationModel":
        """Open `exam` for editing in `labelset` by `rater`, with journal + autosave.

        Loads WS/labels/<labelset>/<exam>.h5 (zeros if absent; a copy of labelset
        `start_from` if given and this labelset has no file for the exam yet), then
        replays WS/labels/<labelset>/<exam>.journal (strokes finished before a
        crash; `recovered_steps` says how many) and saves the result in the
        background. Raises IctviewError for an unknown exam, a labelset owned by
        another rater, or an exam already open for editing in another process.
        Call `close()` when done (it waits for pending saves).

        read_only=True: just show the labels (any labelset, e.g. the imported
        'reference'); no lock, no journal, edits are ignored.
        volume: the exam's StoredVolume if the caller holds it (not read again).
        """
        from ictview.store.label_journal import open_for_editing, open_read_only

        if read_only:
            return open_read_only(cls, workspace, exam, labelset, volume=volume)
        return open_for_editing(
            cls, workspace, exam, labelset, rater, start_from=start_from,
            history_steps=history_steps, idle_cap_s=idle_cap_s, clock=clock, volume=volume,
        )

    def _attach_saver(self, saver: "LabelSaver", revision: int, saved_seconds: float) -> None:
        """Used by open(): connect the journal/saver (store side) to this model."""
        self._saver = saver
        self.revision = self.saved_revision = revision
        self._saved_seconds = saved_seconds
        saver.on_saved.append(self._saved)

    def _saved(self, revision: int) -> None:  # saver thread
        self.saved_revision = max(self.saved_revision, revision)
        for cb in list(self.on_saved):
            cb(revision)

    @property
    def dirty(self) -> bool:
        """True while edits are journaled but not yet written to the label file."""
        return self.saved_revision < self.revision

    @property
    def save_error(self) -> Exception | None:
        """The last background save failure (edits stay safe in the journal)."""
        return self._saver.error if self._saver else None

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every finished step is in the label file; False on timeout."""
        return self._saver.flush(timeout) if self._saver else True

    def close(self, timeout: float | None = None) -> None:
        """Finish a stroke in progress, record time on task, wait for saves, release the exam."""
        if self._closed:
            return
        if self.history.in_stroke:
            self.end_stroke()
        self._touch()
        if self._saver is not None:
            if self._pending_seconds > 0 and (self.revision > 0 or self._saver.file_exists()):
                self._saver.submit(self.revision, self._take_seconds(), [])
            self._saver.close(timeout)
        self._closed = True

    def __enter__(self) -> "AnnotationModel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- time on task ----

    def touch(self) -> None:
        """Record user activity (navigation, mouse moves) for time on task."""
        self._touch()

    def _touch(self) -> None:
        now = self._clock()
        # gaps longer than the idle cap count as the cap: a coffee break is not work
        self._pending_seconds += min(max(now - self._last_activity, 0.0), self.idle_cap_s)
        self._last_activity = now

    def _take_seconds(self) -> float:
        s, self._pending_seconds = self._pending_seconds, 0.0
        self._saved_seconds += s
        return s

    @property
    def seconds_on_task(self) -> float:
        """Active seconds this rater spent on this exam in this labelset, all sessions."""
        return self._saved_seconds + self._pending_seconds

    # ---- brush size ----

    @property
    def brush_radius_mm(self) -> float:
        return self._radius_mm

    @brush_radius_mm.setter
    def brush_radius_mm(self, mm: float) -> None:
        dx = self.spacing[2]
        mm = float(min(max(float(mm), MIN_RADIUS_PX * dx), MAX_RADIUS_PX * dx))
        if mm != self._radius_mm:
            self._radius_mm = mm
            self._emit_state()

    @property
    def brush_radius_px(self) -> float:
        """Radius in pixels along x (columns): what the cursor preview draws."""
        return self._radius_mm / self.spacing[2]

    @brush_radius_px.setter
    def brush_radius_px(self, px: float) -> None:
        self.brush_radius_mm = float(px) * self.spacing[2]

    @property
    def brush_radii_px(self) -> tuple[float, float]:
        """(ry, rx) radius in pixels along rows and columns (differ for non-square pixels)."""
        return (self._radius_mm / self.spacing[1], self._radius_mm / self.spacing[2])

    def grow_brush(self, step_px: float = 1.0) -> None:
        """`]` key."""
        self.brush_radius_px = self.brush_radius_px + step_px

    def shrink_brush(self, step_px: float = 1.0) -> None:
        """`[` key."""
        self.brush_radius_px = self.brush_radius_px - step_px

    def set_window_preset(self, name: str) -> None:
        """One of WINDOW_PRESETS (brain, subdural, stroke, bone)."""
        self.window = WINDOW_PRESETS[name]

    # ---- edit parameters ----

    @property
    def protected_values(self) -> frozenset[int]:
        """Labels a paint operation must not overwrite in the current mode (locked
        classes always, the other classes too in protect mode)."""
        locked = frozenset(self.locked_classes) - {self.label_value}
        if not self.protect_others:
            return locked
        return frozenset(CLASS_VALUES + (IGNORE,)) - {self.label_value} | locked

    def _brush_kwargs(self, erase: bool) -> dict:
        if erase:
            # the eraser ignores the HU limit (wrongly painted pixels can lie outside
            # it) and, in protect mode, erases only the current class; never a locked one
            kw: dict = {"erase": True}
            if self.locked_classes:
                kw["protect"] = frozenset(self.locked_classes)
            return kw
        kw: dict = {"protect": self.protected_values}
        if self.hu_limited:
            kw.update(hu=self.hu, hu_range=self.hu_range)
        return kw

    def _erase_value(self) -> int | None:
        return self.label_value if self.protect_others else None

    # ---- strokes ----

    @property
    def in_stroke(self) -> bool:
        return self.history.in_stroke

    def begin_stroke(self, erase: bool | None = None) -> None:
        """Start one undo step (mouse press). erase=None: erase when tool == 'eraser'."""
        if self.read_only:
            return
        if self.history.in_stroke:
            self.end_stroke()
        self._stroke_erase = (self.tool == "eraser") if erase is None else bool(erase)
        self.history.begin_stroke("erase" if self._stroke_erase else "paint")
        self._last_point = None
        self._touch()

    def _plane_radii(self, plane: str) -> tuple[float, float]:
        """Brush radius in pixels along the plane's rows and columns (mm -> px per axis)."""
        _, r, c = PLANE_AXES[plane]
        return (self._radius_mm / self.spacing[r], self._radius_mm / self.spacing[c])

    def _native_kwargs(self, kw: dict, plane: str) -> dict:
        if plane != AXIAL and "hu" in kw:
            kw = dict(kw, hu=native_view(kw["hu"], plane))
        return kw

    def paint_to(self, z: float, y: float, x: float,
                 plane: str = AXIAL) -> list[paint.SliceDiff] | None:
        """Brush (or erase, in an erase stroke) from the last point of this drag to (z, y, x),
        the disk lying in `plane`. Starts a stroke if none is in progress. Returns the
        per-axial-slice diffs applied ([] if nothing changed, None on a read-only model)."""
        if self.read_only:
            return None
        if not self.history.in_stroke:
            self.begin_stroke()
        value = self._erase_value() if self._stroke_erase else self.label_value
        kw = self._native_kwargs(self._brush_kwargs(self._stroke_erase), plane)
        radii = self._plane_radii(plane)
        index, row, col = to_native(plane, (z, y, x))
        index = int(round(index))
        labels = native_view(self.labels, plane)
        last = self._last_point
        if last is not None and last[:2] == (plane, index):
            diff = paint.line_brush(labels, index, last[2:], (row, col), radii, value, **kw)
        else:
            diff = paint.brush(labels, index, row, col, radii, value, **kw)
        self._last_point = (plane, index, float(row), float(col))
        diffs = axial_diffs(diff, plane)
        self._record(diffs)
        return diffs

    def erase_to(self, z: float, y: float, x: float,
                 plane: str = AXIAL) -> list[paint.SliceDiff] | None:
        """paint_to in an erase stroke (starts one if needed)."""
        if not self.history.in_stroke or not self._stroke_erase:
            self.begin_stroke(erase=True)
        return self.paint_to(z, y, x, plane)

    def end_stroke(self) -> Stroke | None:
        """Finish the step (mouse release): journal it (fsync) and queue the autosave."""
        stroke = self.history.end_stroke()
        self._last_point = None
        self._touch()
        if stroke is not None:
            self._journal(stroke, undo=False)
        self._emit_state()
        return stroke

    def flood_fill(self, z: int, y: int, x: int, plane: str = AXIAL) -> Stroke | None:
        """Fill the 4-connected region around voxel (z, y, x) within its slice of `plane`
        whose HU lie in hu_range (always, whether or not hu_limited is on). One undo step."""
        if self.read_only:
            return None
        kw = self._brush_kwargs(erase=self.tool == "eraser")
        kw.pop("hu", None), kw.pop("hu_range", None)
        value = self._erase_value() if kw.get("erase") else self.label_value
        index, row, col = (int(round(v)) for v in to_native(plane, (z, y, x)))
        diff = paint.flood_fill(native_view(self.labels, plane), index, row, col, value,
                                hu=native_view(self.hu, plane), hu_range=self.hu_range, **kw)
        return self._single_step(axial_diffs(diff, plane), "fill")

    def polygon_fill(self, z: int, points_yx: Sequence[tuple[float, float]],
                     plane: str = AXIAL) -> Stroke | None:
        """Fill a closed polygon on one slice of `plane`: axial: slice z, vertices (y, x);
        coronal: row y = z, vertices (z, x); sagittal: column x = z, vertices (z, y)
        (native plane coordinates). HU-limited when hu_limited. One step."""
        if self.read_only:
            return None
        erase = self.tool == "eraser"
        value = self._erase_value() if erase else self.label_value
        kw = self._native_kwargs(self._brush_kwargs(erase), plane)
        diff = paint.polygon_fill(native_view(self.labels, plane), int(z), points_yx, value, **kw)
        return self._single_step(axial_diffs(diff, plane), "polygon")

    def region_grow(self, z: int, y: int, x: int) -> Stroke | None:
        """3D fill: the voxels connected to (z, y, x) (grow_connectivity) inside hu_range.
        One undo step. Raises volume_paint.RegionTooLarge (nothing changed) over
        grow_max_voxels."""
        if self.read_only:
            return None
        erase = self.tool == "eraser"
        value = self._erase_value() if erase else self.label_value
        kw = self._brush_kwargs(erase)
        kw.pop("hu", None), kw.pop("hu_range", None)
        diffs = volume_paint.region_grow(
            self.labels, self.hu, (z, y, x), value, self.hu_range,
            connectivity=self.grow_connectivity, max_voxels=self.grow_max_voxels,
            voxel_ml=self.voxel_ml, **kw,
        )
        return self._single_step(diffs, "grow")

    def fill_between_slices(self, value: int | None = None, plane: str = AXIAL) -> Stroke | None:
        """Interpolate class `value` (default: the current class) across the empty slices of
        `plane` between slices holding it. Only unlabeled pixels change. One undo step."""
        if self.read_only:
            return None
        value = self.label_value if value is None else _check_class(value)
        diffs = volume_paint.fill_between_slices(self.labels, value, plane=plane,
                                                 spacing=self.spacing)
        return self._single_step(diffs, "interpolate")

    def copy_labels(self, source: np.ndarray) -> Stroke | None:
        """Copy another labelset's labels (e.g. the imported reference) onto the unlabeled
        voxels: one undo step, so a rater corrects what exists instead of starting empty
        (Ctrl+Z gives the empty labelset back)."""
        if self.read_only:
            return None
        if source.shape != self.labels.shape:
            raise ValueError(f"labels shape {source.shape} != this exam's {self.labels.shape}")
        diffs = []
        for value in np.unique(source[source > 0]):
            region = (source == value) & (self.labels == 0)
            diffs += volume_paint._write_volume(self.labels, region, int(value), protect=(),
                                                erase=False)
        return self._single_step(diffs, "copy")

    def fill_holes(self, index: int | None = None, plane: str = AXIAL,
                   value: int | None = None) -> Stroke | None:
        """Fill the holes of class `value` (default: the current class) on slice `index` of
        `plane`, or on every slice (index None: 3D). Only unlabeled pixels change. One undo
        step; None when there was no hole (or the model is read-only)."""
        if self.read_only:
            return None
        value = self.label_value if value is None else _check_class(value)
        diffs = volume_paint.fill_holes(self.labels, value, plane=plane, index=index)
        return self._single_step(diffs, "fill holes")

    # ---- start from a model (ictview/core/proposal.py) ----

    proposal_components: np.ndarray | None = None  # int32 (z, y, x) 1..n, 0 outside
    proposal_labels: np.ndarray | None = None  # the labels right after the proposal
    proposal_run: str = ""
    proposal_revision = 0  # the journal revision of the proposal step

    def apply_proposal(self, components: np.ndarray, run: str = "") -> Stroke | None:
        """Write a model's proposal (component map, 1..n) as unclassified hemorrhage (255)
        on unlabeled voxels: its own undo step. Components then get a subtype with
        `classify_component`."""
        if self.read_only:
            return None
        if components.shape != self.labels.shape:
            raise ValueError(f"proposal shape {components.shape} != labels {self.labels.shape}")
        from ictview.core.proposal import UNCLASSIFIED

        region = (components > 0) & (self.labels == 0)
        if self.history.in_stroke:
            self.end_stroke()
        stroke = self._single_step(
            volume_paint._write_volume(self.labels, region, UNCLASSIFIED, protect=(),
                                       erase=False), "proposal")
        self.proposal_components = components
        self.proposal_labels = self.labels.copy()
        self.proposal_run = run
        self.proposal_revision = self.revision
        if self._saver is not None:  # each save from now on records the edit effort
            self._saver.effort_base = (self.proposal_labels.copy(), self.revision)
        return stroke

    def component_at(self, z: int, y: int, x: int) -> int:
        """The proposal component under voxel (z, y, x) (0: none)."""
        c = self.proposal_components
        if c is None:
            return 0
        z, y, x = (int(round(v)) for v in (z, y, x))
        if not (0 <= z < c.shape[0] and 0 <= y < c.shape[1] and 0 <= x < c.shape[2]):
            return 0
        return int(c[z, y, x])

    def classify_component(self, z: int, y: int, x: int,
                           value: int | None = None) -> Stroke | None:
        """One click: the proposal component under (z, y, x) takes class `value` (default
        the current class) on its voxels still unclassified or of another class, never
        on a locked class. One undo step; None when no component is there."""
        if self.read_only:
            return None
        comp = self.component_at(z, y, x)
        if not comp:
            return None
        value = self.label_value if value is None else _check_class(value)
        region = self.proposal_components == comp
        region &= self.labels != 0  # what the rater erased stays erased
        for locked in self.locked_classes:
            region &= self.labels != locked
        return self._single_step(
            volume_paint._write_volume(self.labels, region, value, protect=(), erase=False),
            "classify")

    def cycle_class(self, step: int = 1) -> int:
        """The next label class (a key cycles 1..5 while classifying components)."""
        i = CLASS_VALUES.index(self.label_value)
        self.label_value = CLASS_VALUES[(i + step) % len(CLASS_VALUES)]
        return self.label_value

    def edit_effort(self) -> dict | None:
        """Edit effort against the proposal now (ictview/core/proposal.py), or None when
        this exam was not started from a model: Dice, voxels added/removed per class,
        strokes after the proposal, seconds on task."""
        if self.proposal_labels is None:
            return None
        from ictview.core.proposal import edit_effort

        out = edit_effort(self.proposal_labels, self.labels)
        out.update(run=self.proposal_run, strokes=self.revision - self.proposal_revision,
                   seconds=self.seconds_on_task)
        return out

    def _single_step(self, diffs: list[paint.SliceDiff], kind: str) -> Stroke | None:
        if self.history.in_stroke:
            self.end_stroke()
        self.history.begin_stroke(kind)
        self._record(diffs)
        return self.end_stroke()

    def _record(self, diffs: list[paint.SliceDiff]) -> None:
        if not diffs:
            return
        for d in diffs:
            self.history.add(d)
            self._count(d, forward=True)
        self._emit_labels((min(d.z for d in diffs), max(d.z for d in diffs) + 1), diffs)

    # ---- undo / redo ----

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo or self.history.in_stroke

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    def undo(self) -> Stroke | None:
        """Revert the last step (Ctrl+Z); journaled and autosaved like a stroke."""
        if self.history.in_stroke:
            self.end_stroke()
        stroke = self.history.undo(self.labels)
        if stroke is not None:
            for d in stroke.diffs:
                self._count(d, forward=False)
            self._touch()
            self._journal(stroke, undo=True)
            self._emit_labels(stroke.z_range, stroke.diffs)
            self._emit_state()
        return stroke

    def redo(self) -> Stroke | None:
        """Re-apply the last undone step (Ctrl+Shift+Z)."""
        if self.history.in_stroke:
            self.end_stroke()
        stroke = self.history.redo(self.labels)
        if stroke is not None:
            for d in stroke.diffs:
                self._count(d, forward=True)
            self._touch()
            self._journal(stroke, undo=False)
            self._emit_labels(stroke.z_range, stroke.diffs)
            self._emit_state()
        return stroke

    # ---- volumes ----

    def _count(self, d: paint.SliceDiff, forward: bool) -> None:
        old = np.bincount(d.old[d.mask], minlength=256)
        n = d.n_changed
        sign = 1 if forward else -1
        self._counts -= sign * old
        self._counts[d.new_value] += sign * n

    def volumes_ml(self) -> dict[str, float]:
        """Live volume per class code (EDH, SDH, SAH, IPH, IVH) in mL; 0.0 when absent."""
        return {c.code: float(self._counts[c.value]) * self.voxel_ml for c in LABEL_CLASSES}

    def voxel_counts(self) -> dict[int, int]:
        """Voxels per label value present (0 and 255 included)."""
        return {int(v): int(n) for v, n in enumerate(self._counts) if n}

    @staticmethod
    def class_name(value: int) -> str:
        return BY_VALUE[value].code if value in BY_VALUE else str(value)

    # ---- journal hand-off ----

    def _journal(self, stroke: Stroke, undo: bool) -> None:
        self.revision += 1
        if self._saver is None:
            return
        if undo:
            patches = [(d.z, d.y0, d.x0, d.mask, d.old) for d in reversed(stroke.diffs)]
        else:
            patches = [(d.z, d.y0, d.x0, d.mask, d.new_value) for d in stroke.diffs]
        # append + fsync here (the only wait), the label file is written by the saver thread
        self._saver.submit(self.revision, self._take_seconds(), patches)

    # ---- events ----

    def _emit_labels(self, z_range: tuple[int, int], diffs: list[paint.SliceDiff]) -> None:
        self.changed_diffs = list(diffs)
        try:
            for cb in list(self.on_labels_changed):
                cb(z_range)
        finally:
            self.changed_diffs = []

    def _emit_state(self) -> None:
        for cb in list(self.on_state_changed):
            cb()
