"""Status bar: HU and position under the cursor, slice index, window, save state, rater."""

from __future__ import annotations

import numpy as np
from PySide6 import QtWidgets

from ictview.core.labels import BY_VALUE


class StatusBar(QtWidgets.QStatusBar):
    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.setSizeGripEnabled(False)
        self.position = QtWidgets.QLabel()
        self.hu = QtWidgets.QLabel()
        self.slice = QtWidgets.QLabel()
        self.window = QtWidgets.QLabel()
        self.save_state = QtWidgets.QLabel()
        self.save_state.setObjectName("saveState")
        self.rater = QtWidgets.QLabel()
        self.position.setMinimumWidth(190)
        self.position.setToolTip("x, y: pixel column and row from 0; slice numbered from 1 "
                                 "like the slice counter")
        self.hu.setMinimumWidth(130)
        self.slice.setMinimumWidth(100)
        self.window.setMinimumWidth(170)
        self._normal = (self.position, self.hu, self.slice, self.window)
        for w in self._normal:
            self.addWidget(w)
        # A message hides the cursor fields and a cleared one shows them again. Qt does
        # this only for widgets visible at the time, so a message posted before the window
        # is shown (an exam opened for a screenshot) was drawn over them.
        self.messageChanged.connect(
            lambda text: [w.setVisible(not text) for w in self._normal])
        self.addPermanentWidget(self.save_state)
        self.addPermanentWidget(self.rater)
        self.show_cursor(None, None, None)

    def show_cursor(self, hu: np.ndarray | None, pixel: tuple[int, int, int] | None,
                    spacing: tuple[float, float, float] | None,
                    labels: np.ndarray | None = None) -> None:
        """pixel = (z, row, col) inside the volume, or None when the cursor is outside."""
        if hu is None or pixel is None:
            self.position.setText("x –  y –  slice –")
            self.hu.setText("HU –")
            return
        z, row, col = pixel
        # the slice numbered as the slice counter beside it (from 1); x / y stay pixel
        # column / row from 0, as a DICOM or NIfTI viewer gives them (tooltip)
        text = f"x {col}  y {row}  slice {z + 1}"
        if spacing is not None:
            text += f"   ({col * spacing[2]:.1f}, {row * spacing[1]:.1f} mm)"
        self.position.setText(text)
        text = f"HU {int(hu[z, row, col])}"
        if labels is not None and labels[z, row, col]:
            value = int(labels[z, row, col])
            text += f"  ·  {BY_VALUE[value].code if value in BY_VALUE else 'ignore'}"
        self.hu.setText(text)

    def show_slice(self, z: int, n: int) -> None:
        self.slice.setText(f"Slice {z + 1} / {n}" if n else "Slice –")

    def show_window(self, center: float, width: float, preset: str) -> None:
        name = preset.capitalize() if preset else "Custom"
        self.window.setText(f"W {width:.0f} / L {center:.0f}  {name}")

    def show_save_state(self, text: str, pending: bool) -> None:
        self.save_state.setText(text)
        self.save_state.setProperty("pending", "true" if pending else "false")
        self.save_state.style().unpolish(self.save_state)
        self.save_state.style().polish(self.save_state)

    def show_rater(self, rater: str, labelset: str) -> None:
        self.rater.setText(f"{rater}  ·  {labelset}" if rater else "")
