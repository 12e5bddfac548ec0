"""Exam references and the trainer's model-selection metric (predicted in memory).

Shared by the trainer (``validation_step``), calibration and ``evaluate`` (which adds the
stored predictions, bootstraps and metrics.json on top).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ictview.core.labels import IGNORE
from ictview.stats import PixelStats, exam_auc
from ictview.store.workspace import Workspace
from training.inference import Predictor


def _positive_pixels(labels: np.ndarray) -> bool:
    return bool(((labels > 0) & (labels != IGNORE)).any())


def exam_reference(ws: Workspace, exam: str, labelset: str = "reference") -> tuple[int | None, str]:
    """(0/1 or None, source): readers' majority where there are reads, else reference pixels."""
    v = ws.exam_label(exam, "ICH")
    if v is not None:
        return v, "reads-majority"
    lab = ws.load_labels(labelset, exam)
    if lab is not None:
        return int(_positive_pixels(lab)), "reference-pixels"
    return None, ""


def validation_metric(
    predictor: Predictor, ws: Workspace, exams: Sequence[str], metric: str, labelset: str
) -> float | None:
    """The trainer's model-selection metric, predicted in memory (nothing written)."""
    if metric == "pixel_ap":
        vols = []
        for name in exams:
            lab = ws.load_labels(labelset, name)
            if lab is not None:
                vols.append((name, predictor.predict_exam(ws, name).prob, lab))
        if not vols:
            return None
        return float(PixelStats.from_volumes(vols).average_precision().value)
    ys, ss = [], []
    for name in exams:
        y, _ = exam_reference(ws, name, labelset)
        if y is not None:
            ys.append(y)
            ss.append(predictor.predict_exam(ws, name).exam_score)
    if not ys:
        return None
    return float(exam_auc(np.array(ys), np.array(ss)).value)
