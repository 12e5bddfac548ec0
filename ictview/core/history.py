"""Undo/redo of label edits as small diffs (napari's _MaskedPaintAtom idea).

A stroke is what one mouse drag (or one fill) changed: a list of SliceDiffs,
each a bounding box, a mask and the old values. Undo reverts the diffs in
reverse order; redo re-applies them in order. The history is bounded both in
steps and in bytes, dropping the oldest strokes first.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from ictview.core.paint import SliceDiff


@dataclass(eq=False)
class Stroke:
    """One undo step."""

    diffs: list[SliceDiff]
    kind: str = "paint"  # "paint", "erase", "fill", "polygon", ...

    @property
    def z_range(self) -> tuple[int, int]:
        """Half-open (first, stop) slice range the stroke touched."""
        zs = [d.z for d in self.diffs]
        return (min(zs), max(zs) + 1)

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self.diffs)

    def apply(self, labels: np.ndarray) -> None:
        for d in self.diffs:
            d.apply(labels)

    def revert(self, labels: np.ndarray) -> None:
        for d in reversed(self.diffs):
            d.revert(labels)


def merge_diffs(diffs: list[SliceDiff]) -> list[SliceDiff]:
    """Merge the diffs of one stroke into one per slice when they write the same value.

    Later dabs of a drag only record pixels the earlier dabs did not change (those
    already hold the value), so the first old value recorded for a pixel is its
    value before the stroke.
    """
    if len(diffs) < 2 or len({d.new_value for d in diffs}) != 1:
        return list(diffs)
    # merging pays only while the merged bbox is not much larger than the parts
    # (a long diagonal drag keeps its per-segment diffs)
    by_z: dict[int, list[SliceDiff]] = {}
    for d in diffs:
        by_z.setdefault(d.z, []).append(d)
    out = []
    for z, ds in by_z.items():
        if len(ds) == 1:
            out.append(ds[0])
            continue
        y0 = min(d.y0 for d in ds)
        x0 = min(d.x0 for d in ds)
        y1 = max(d.y0 + d.mask.shape[0] for d in ds)
        x1 = max(d.x0 + d.mask.shape[1] for d in ds)
        if (y1 - y0) * (x1 - x0) > 1.5 * sum(d.mask.size for d in ds):
            out.extend(ds)
            continue
        mask = np.zeros((y1 - y0, x1 - x0), bool)
        old = np.zeros((y1 - y0, x1 - x0), np.uint8)
        for d in reversed(ds):  # earliest last, so its old values win
            h, w = d.mask.shape
            sl = np.s_[d.y0 - y0 : d.y0 - y0 + h, d.x0 - x0 : d.x0 - x0 + w]
            old[sl][d.mask] = d.old[d.mask]
            mask[sl] |= d.mask
        out.append(SliceDiff(z, y0, x0, mask, old, ds[0].new_value))
    return out


@dataclass
class UndoHistory:
    """Bounded undo/redo stack of strokes.

    max_steps: strokes kept for undo (oldest dropped first).
    max_bytes: memory bound of all kept strokes (oldest dropped first; the
    newest stroke is always kept).
    """

    max_steps: int = 200
    max_bytes: int = 256 * 1024 * 1024
    _undo: deque = field(default_factory=deque, init=False, repr=False)
    _redo: list = field(default_factory=list, init=False, repr=False)
    _current: list | None = field(default=None, init=False, repr=False)
    _current_kind: str = field(default="paint", init=False, repr=False)
    _bytes: int = field(default=0, init=False, repr=False)

    # ---- recording ----------------------------------------------------------------

    @property
    def in_stroke(self) -> bool:
        return self._current is not None

    def begin_stroke(self, kind: str = "paint") -> None:
        """Start collecting diffs into one undo step (ends an unfinished one first)."""
        if self._current is not None:
            self.end_stroke()
        self._current = []
        self._current_kind = kind

    def add(self, diff: SliceDiff | None) -> None:
        """Record a diff already applied to the labels (None is ignored).
        Outside a stroke, the diff becomes a step of its own."""
        if diff is None:
            return
        if self._current is None:
            self.begin_stroke()
            self._current.append(diff)
            self.end_stroke()
        else:
            self._current.append(diff)

    def end_stroke(self) -> Stroke | None:
        """Close the current step; None when it changed nothing. A new step clears redo."""
        diffs, self._current = self._current, None
        if not diffs:
            return None
        stroke = Stroke(merge_diffs(diffs), self._current_kind)
        self._redo.clear()
        self._push(stroke)
        return stroke

    def _push(self, stroke: Stroke) -> None:
        self._undo.append(stroke)
        self._bytes += stroke.nbytes
        while len(self._undo) > 1 and (
            len(self._undo) > self.max_steps or self._bytes > self.max_bytes
        ):
            self._bytes -= self._undo.popleft().nbytes

    # ---- undo / redo ----------------------------------------------------------------

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def undo(self, labels: np.ndarray) -> Stroke | None:
        """Revert the newest stroke in `labels`; returns it (None if nothing to undo)."""
        if self._current is not None:
            self.end_stroke()
        if not self._undo:
            return None
        stroke = self._undo.pop()
        self._bytes -= stroke.nbytes
        stroke.revert(labels)
        self._redo.append(stroke)
        return stroke

    def redo(self, labels: np.ndarray) -> Stroke | None:
        """Re-apply the last undone stroke; returns it (None if nothing to redo)."""
        if self._current is not None:
            self.end_stroke()
        if not self._redo:
            return None
        stroke = self._redo.pop()
        stroke.apply(labels)
        self._push(stroke)
        return stroke

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
        self._current = None
        self._bytes = 0
