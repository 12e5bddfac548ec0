"""A run's prediction drawn on a SliceView (shared by the review and comparison views).

The SliceView's label ImageItem shows a uint8 index volume through a lookup table
(pyqtgraph's Indexed8 path): comparison codes with the review palette's table (red / green /
yellow, or blue / orange / white: Preferences; ictview.core.overlay), or round(255 p) with the
heatmap table. Moving the threshold
recomputes the codes (one vectorised pass) or, for the heatmap, only swaps the table.
"""

from __future__ import annotations

import numpy as np

from ictview.core import overlay as ov
from ictview.gui import preferences
from ictview.gui.viewer.slice_view import SliceView

COMPARISON, HEATMAP = "comparison", "heatmap"


class PredictionLayer:
    def __init__(self, view: SliceView):
        self.view = view
        self.hu: np.ndarray | None = None
        self.prob: np.ndarray | None = None
        self.reference: np.ndarray | None = None  # bool, None: no pixel reference
        self.mode = COMPARISON
        self.threshold = 0.5
        self._heat_index: np.ndarray | None = None
        self.prediction: np.ndarray | None = None  # bool, at the threshold
        self.codes: np.ndarray | None = None
        self.palette = preferences.review_palette()
        preferences.listen(self)  # a palette chosen in Preferences shows at once

    def set_exam(self, hu: np.ndarray, prob: np.ndarray | None, reference: np.ndarray | None,
                 spacing_yx: tuple[float, float], z: int | None = None) -> None:
        if prob is not None and prob.shape != hu.shape:
            raise ValueError(f"prediction shape {prob.shape} != volume shape {hu.shape}")
        self.hu, self.prob, self.reference = hu, prob, reference
        self._heat_index = None
        self._recompute()
        self._apply_lut()
        self.view.set_volume(hu, self._index_volume(), spacing_yx, z=z)

    def set_mode(self, mode: str) -> None:
        self.mode = mode
        self._apply_lut()
        self._swap_labels()

    def set_threshold(self, t: float) -> None:
        self.threshold = float(t)
        self._recompute()
        if self.mode == HEATMAP:
            self._apply_lut()
        self._swap_labels()

    def set_opacity(self, opacity: float) -> None:
        self.view.set_opacity(opacity)

    def preferences_changed(self, prefs) -> None:
        if prefs.review_palette != self.palette:
            self.palette = prefs.review_palette
            self._apply_lut()

    # ---- internals --------------------------------------------------------------------------

    def _recompute(self) -> None:
        if self.hu is None:
            return
        if self.prob is None:
            self.prediction = np.zeros(self.hu.shape, bool)
        else:
            self.prediction = self.prob >= np.float16(self.threshold)
        self.codes = ov.comparison_codes(self.reference, self.prediction)

    def _index_volume(self) -> np.ndarray:
        if self.mode == HEATMAP and self.prob is not None:
            if self._heat_index is None:
                self._heat_index = ov.probability_index(self.prob)
            return self._heat_index
        return self.codes

    def _apply_lut(self) -> None:
        lut = ov.heatmap_lut(self.threshold) if self.mode == HEATMAP \
            else ov.comparison_lut(self.palette)
        self.view.label_item.setLookupTable(lut)

    def _swap_labels(self) -> None:
        if self.hu is None:
            return
        self.view.labels = self._index_volume()
        self.view.refresh_labels()

    def regions(self, min_voxels: int = 1) -> list[ov.Region]:
        if self.prediction is None:
            return []
        return ov.error_regions(self.reference, self.prediction, min_voxels)

    def probability_at(self, z: int, row: int, col: int) -> float | None:
        if self.prob is None or row < 0 or col < 0:
            return None
        return float(self.prob[z, row, col])
