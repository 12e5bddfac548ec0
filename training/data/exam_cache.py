"""Exam cache: brain-masked int16 HU volumes by exam name.

The cache keeps brain-masked HU as int16 (2 bytes a voxel; three float32 windows would be
six times that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ictview.core.brain_mask import BrainMaskConfig, strip_skull
from ictview.store.workspace import Workspace

Progress = Callable[[int, int, str], None]


class ExamCache:
    """Brain-masked int16 HU volumes by exam name, loaded once per process."""

    def __init__(self, ws: Workspace, brain: BrainMaskConfig):
        self.ws = ws
        self.brain = brain
        self._hu: dict[str, np.ndarray] = {}

    def hu(self, exam: str) -> np.ndarray:
        if exam not in self._hu:
            raw = self.ws.read_volume(exam).hu
            self._hu[exam], _ = strip_skull(raw, self.brain)
        return self._hu[exam]

    def load(self, exams: Sequence[str], progress: Progress | None = None, what: str = "") -> None:
        for i, name in enumerate(exams):
            self.hu(name)
            if progress:
                progress(i + 1, len(exams), f"loading {what}".strip())
