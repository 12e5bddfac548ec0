"""Pseudo-labeling: a trained model over the unlabeled role -> predictions in the workspace.

A pseudolabel run (kind "pseudolabel", parent = the teacher run) holds, per unlabeled exam,
the per-slice image probabilities that the ranker sorts (training/ranker.py) and either the
float16 pixel probabilities (inference.pseudo_store = "float16": every C / K setting and the
GUI's threshold inspection) or the compact targets at one K (= "targets": every C at that K,
about 1 % of the bytes). The pseudo-labels themselves are derived at student time, a slice at
a time. The engine is ``training.prediction_run.run_predictions``, shared with ``evaluate``.
"""

from __future__ import annotations

import json
from pathlib import Path

from ictview.errors import IctviewError
from ictview.store.workspace import Workspace
from training.config import InferenceSection, RankerSection
from training.prediction_run import run_predictions


def pseudolabel(
    ws_root: Path | str,
    teacher_run: str,
    out_run: str | None = None,
    *,
    role: str = "unlabeled",
    checkpoint: str = "final",
    settings: InferenceSection | None = None,
    overrides: list[str] | None = None,
    device: str = "auto",
    json_progress: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    ranker: RankerSection | None = None,
) -> str:
    """Teacher predictions over the role (default unlabeled) into pseudolabel run ``out_run``
    (default "<teacher>-pl"). Returns the run name. ``ranker``: the K of stored targets
    (inference.pseudo_store = "targets"); default the teacher run's own ranker section."""
    out_run = out_run or f"{teacher_run}-pl"

    # both chosen from the workspace run_predictions opens: under torchrun, every rank's
    # view of one catalog snapshot (no rank but 0 opens the live catalog)
    def exams(ws: Workspace) -> list[str]:
        names = [e.name for e in ws.exams(role=role)]
        if not names:
            raise IctviewError(f"{ws_root}: no exams with role '{role}' to pseudo-label")
        return names

    def compact_k(ws: Workspace) -> tuple[float, float]:
        section = ranker
        if section is None:
            info = ws.run(teacher_run)
            fields = json.loads(info["config"] or "{}").get("ranker", {}) if info else {}
            section = RankerSection(**{k: v for k, v in fields.items()
                                       if k in RankerSection.__dataclass_fields__})
        return section.k_hi, section.k_lo

    run_predictions(ws_root, teacher_run, out_run, exams, kind="pseudolabel",
                    checkpoint=checkpoint, settings=settings, overrides=overrides, device=device,
                    json_progress=json_progress, overwrite=overwrite, quiet=quiet,
                    extra_config={"role": role}, compact_k=compact_k)
    return out_run
