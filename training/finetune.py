"""Fine-tune with a rater's labels (issue 16): "Train with my labels".

Student-style: the weights start from the current model's final checkpoint (as the
Noisy Student does from its teacher), and the labeled set is the labeled role's
reference labels plus every exam a rater finished in the given labelsets. Exams of the
validation and test roles are never trained on, whoever labeled them (the
evaluation would see its own labels). Labels are read through the read guard
(`ws.label_slices`, `ws.labelset_exams`).
"""

from __future__ import annotations

from ictview.errors import IctviewError
from training.data.sources import labeled_pairs_source
from training.trainer import Trainer

TRAINABLE_ROLES = ("labeled", "unlabeled")


def labeled_set(ws, base_labelset: str, extra: list[str]) -> list[tuple[str, str]]:
    """[(exam, labelset)]: the rater's labelsets first (their labels are the newest word on
    an exam), then `base_labelset` on the labeled role."""
    roles = {e.name: e.role for e in ws.exams()}
    chosen: dict[str, str] = {}
    for ls in extra:
        for exam in ws.labelset_exams(ls):
            if roles.get(exam) in TRAINABLE_ROLES:
                chosen.setdefault(exam, ls)
    for exam in ws.labelset_exams(base_labelset):
        if roles.get(exam) == "labeled":
            chosen.setdefault(exam, base_labelset)
    return sorted(chosen.items())


class FinetuneTrainer(Trainer):
    kind = "finetune"

    def __init__(self, *args, extra_labelsets: list[str] | None = None, **kw):
        super().__init__(*args, **kw)
        self.extra_labelsets = list(extra_labelsets or [])

    def build_sources(self, ws, cache):
        pairs = labeled_set(ws, self.cfg.data.labelset, self.extra_labelsets)
        src = labeled_pairs_source(ws, cache, self.cfg, pairs)
        if src is None:
            raise IctviewError(f"{ws.root}: no labels to fine-tune on in "
                               f"{', '.join([self.cfg.data.labelset, *self.extra_labelsets])}")
        src.info["labelsets"] = sorted({ls for _, ls in pairs})
        src.info["rater_exams"] = sum(1 for _, ls in pairs if ls != self.cfg.data.labelset)
        return [src], [1.0]
