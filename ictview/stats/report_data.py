"""What the report needs from a workspace, gathered once (numpy only, no torch, no Qt).

For each run (DESIGN.md "the study"):
- exam scores (`Prediction.exam_score`) on the test and validation roles;
- pixel histograms (PixelStats) of its float16 maps on the pixel-labeled test subset
  against the "reference" labelset and against each repetition `retest-<k>` of the
  rater, and on the pixel-labeled validation exams (for the Dice threshold and the
  validation tables).

Exam reference: the majority of the readers' "ICH" reads, or, for an exam nobody
read, whether its "reference" mask has any hemorrhage (labels 1..5). Subtypes:
the readers' majority per finding (exams with reads for every finding only).

Every run of a table must be evaluated on the same exams and images (paired
bootstrap), so each role uses the exams every run predicted; an exam left out is
listed with its reason. Memory: a PixelStats image holds its non-empty histogram bins
(~16 kB for a 128 x 128 cpu-study image, at most 245 kB), kept for images x runs x
(1 + repetitions) on the test subset plus the validation images: on the cpu-study
workspace (8 runs, 240 test images x 4 labelsets, 800 validation images) the report
peaks at ~0.7 GB RSS (2.7 GB when the histograms were dense).

Run traits (for Tables 2 and 3) are read from the run's catalog row (`kind`,
`config` JSON) by the rules in `contrast_of` and `ranker_of`.

Without a list of runs the report takes the workspace's model runs (`model_runs`): every
catalog run of a kind `ictview-train` trains (MODEL_KINDS: teacher, student, no-ranker,
image-oracle, pixel-oracle) that predicted every test exam. Pseudo-label runs (`-pl`,
kind "pseudolabel") and the study's own run (kind "study") are not models; a model run
not (or not fully) evaluated on the test role is left out with a note, so that one
unevaluated run cannot shrink the paired test set of all the others.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ictview.core.labels import FINDINGS, IGNORE
from ictview.errors import IctviewError
from ictview.stats.pixel_stats import PixelStats
from ictview.store.workspace import Workspace

Progress = Callable[[int, int, str], None]

REFERENCE_LABELSET = "reference"
RETEST_PATTERN = re.compile(r"^retest-(\d+)$")
SUBTYPES = tuple(f for f in FINDINGS if f != "ICH")

# config keys that name or place a run rather than change what it learns: two runs
# that differ only in these (and in the studied factor) count as "differing only" in it
BOOKKEEPING_KEYS = frozenset({
    "name", "run", "run_name", "workspace", "out", "output", "output_dir", "parent",
    "teacher", "init_from", "resume", "created_at", "json_progress", "progress", "device",
    "devices", "num_workers", "workers", "log_dir", "checkpoint", "checkpoints", "notes",
})  # fmt: skip
CONTRAST_KEYS = frozenset({"contrast", "gamma_range", "log_gain_range"})
CONTRAST_VARIANTS = ("none", "power", "log", "mixed")
# the kinds of the runs `ictview-train` trains (training/trainer.py TRAINERS), in table order
MODEL_KINDS = ("teacher", "student", "no-ranker", "image-oracle", "pixel-oracle",
               "external", "finetune")  # external: `ictview import-predictions`; finetune: issue 16


# ---------------------------------------------------------------------------
# runs and their traits


def flatten(config: object, prefix: str = "") -> dict[str, object]:
    """{"augment": {"contrast": "log"}} -> {"augment.contrast": "log"} (lists kept as tuples)."""
    if isinstance(config, dict):
        out: dict[str, object] = {}
        for k, v in config.items():
            out.update(flatten(v, f"{prefix}{k}."))
        return out
    if isinstance(config, list):
        config = tuple(config)
    return {prefix[:-1]: config} if prefix else {}


def _parts(key: str) -> list[str]:
    return key.lower().split(".")


def contrast_of(config: dict) -> str | None:
    """The contrast augmentation variant: the value of a key named `contrast` at any depth.

    One of CONTRAST_VARIANTS; None when the config does not say (the run then
    takes no part in Table 2).
    """
    for key, value in flatten(config).items():
        if _parts(key)[-1] == "contrast" and isinstance(value, str):
            v = value.lower()
            return v if v in CONTRAST_VARIANTS else value
    return None


def _normalized(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def ranker_of(name: str, kind: str, config: dict) -> bool | None:
    """Whether a ranker chose the run's pseudo-labels (Table 3).

    False (the no-ranker ablation) when the kind or the name says "no ranker"
    (`ictview-train` gives the ablation kind "no-ranker"), or the config's ranker
    section says so: `ranker.enabled` false, `ranker` false / "none" / "off",
    `use_ranker` false, or C (`ranker.top_percent`, `ranker.c`) >= 100% (every image
    positive). True for any other student run. None for teachers, oracles and other
    kinds, whatever their config holds: not part of Table 3. Keys under `study` (the
    plan of a whole study, e.g. `study.no_ranker`) say nothing about this run.
    """
    if "noranker" in _normalized(kind) or "noranker" in _normalized(name):
        return False
    if "student" not in kind.lower():
        return None
    for key, value in flatten(config).items():
        parts = _parts(key)
        if parts[0] == "study":
            continue
        leaf, section = parts[-1], parts[:-1]
        off = value is False or (isinstance(value, str) and value.lower() in {"none", "off"})
        if leaf in {"ranker", "use_ranker"} and off:
            return False
        if "ranker" in section:
            if leaf in {"enabled", "enable"} and value is False:
                return False
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if leaf in {"top_percent", "c", "percent"} and numeric and value >= 100:
                return False
    return True


def signature(kind: str, config: dict, ignore: Callable[[list[str]], bool]) -> str:
    """A canonical text of the config without bookkeeping keys and the studied factor."""
    kept = {
        k: v
        for k, v in flatten(config).items()
        if not any(p in BOOKKEEPING_KEYS for p in _parts(k)) and not ignore(_parts(k))
    }
    return json.dumps([kind, sorted(kept.items())], default=str)


def _is_contrast_key(parts: list[str]) -> bool:
    return parts[-1] in CONTRAST_KEYS


def _is_ranker_key(parts: list[str]) -> bool:
    return any("ranker" in p for p in parts)


@dataclass
class RunInfo:
    name: str
    kind: str
    parent: str | None
    status: str
    config: dict
    contrast: str | None  # see contrast_of
    ranker: bool | None  # see ranker_of

    @classmethod
    def from_row(cls, row: dict) -> RunInfo:
        try:
            config = json.loads(row.get("config") or "{}")
        except ValueError:
            config = {}
        if not isinstance(config, dict):
            config = {}
        name, kind = row["name"], row.get("kind") or ""
        return cls(name, kind, row.get("parent"), row.get("status") or "", config,
                   contrast_of(config), ranker_of(name, kind, config))  # fmt: skip

    @property
    def contrast_signature(self) -> str:
        """Equal for runs that differ only in contrast augmentation (and bookkeeping)."""
        return signature(self.kind, self.config, _is_contrast_key)

    @property
    def ranker_signature(self) -> str:
        """Equal for runs that differ only in the ranker (kind ignored: "student" / "no-ranker")."""
        return signature("", self.config, _is_ranker_key)

    def contrast_parameters(self) -> str:
        """The Parameters column of Table 2 (the config's ranges, paper defaults otherwise)."""
        flat = {_parts(k)[-1]: v for k, v in flatten(self.config).items()}

        def uniform(key: str, default: tuple[float, float]) -> str:
            v = flat.get(key, default)
            ok = isinstance(v, tuple) and len(v) == 2
            ok = ok and all(isinstance(x, (int, float)) for x in v)
            lo, hi = v if ok else default
            return f"U({lo:g}, {hi:g})"

        power = f"gamma ~ {uniform('gamma_range', (0.85, 1.1))}"
        log = f"g ~ {uniform('log_gain_range', (0.7, 1.1))}"
        return {
            "none": "--",
            "power": power,
            "log": log,
            "mixed": f"{power}, {log} or none, 1/3 each",
        }.get(self.contrast or "", "--")

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "parent": self.parent,
                "status": self.status, "contrast": self.contrast, "ranker": self.ranker,
                "config": self.config}  # fmt: skip


# ---------------------------------------------------------------------------
# gathered data


@dataclass
class ExamSet:
    """Exam-level inputs of one role: the exams every run predicted and that have a reference."""

    role: str
    exams: list[str]
    labels: np.ndarray  # bool per exam
    label_source: list[str]  # "reads" or "reference mask"
    scores: dict[str, np.ndarray]  # run -> float64 exam scores, same order
    # finding -> bool per exam, only for exams with reads of every finding (subtype_exams)
    subtypes: dict[str, np.ndarray] = field(default_factory=dict)
    subtype_exams: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    excluded: list[tuple[str, str]] = field(default_factory=list)  # (exam, reason)
    sites: list[str] = field(default_factory=list)

    @property
    def n_pos(self) -> int:
        return int(self.labels.sum())

    @property
    def n_neg(self) -> int:
        return int((~self.labels).sum())

    def summary(self) -> dict:
        return {
            "role": self.role,
            "sites": self.sites,
            "runs": list(self.scores),
            "exams": len(self.exams),
            "positive": self.n_pos,
            "negative": self.n_neg,
            "reference_from_reads": self.label_source.count("reads"),
            "reference_from_mask": self.label_source.count("reference mask"),
            "subtype_exams": int(self.subtype_exams.sum()),
            "excluded": [{"exam": e, "reason": r} for e, r in self.excluded],
        }


@dataclass
class PixelSet:
    """Pixel histograms of every run on one pixel-labeled image set against one labelset."""

    labelset: str
    exams: list[str]
    stats: dict[str, PixelStats]  # run -> histograms (same images)

    @property
    def n_images(self) -> int:
        return next(iter(self.stats.values())).n_images if self.stats else 0

    def summary(self) -> dict:
        return {"labelset": self.labelset, "runs": list(self.stats), "exams": len(self.exams),
                "images": self.n_images}  # fmt: skip


@dataclass
class RetestData:
    exams: list[str]
    repetitions: list[str]  # labelset names retest-1, retest-2, ...
    pixels: dict[str, PixelSet]  # repetition -> runs against it
    # intra-rater input, per repetition one array per exam: that repetition's hemorrhage
    # on the voxels where any repetition marks hemorrhage (Dice and volumes only count those)
    union_masks: dict[str, list[np.ndarray]]
    voxel_ml: list[float]

    def summary(self) -> dict:
        images = next(iter(self.pixels.values())).n_images if self.pixels else 0
        return {"exams": len(self.exams), "repetitions": self.repetitions, "images": images}


@dataclass
class ReportData:
    workspace: str
    runs: list[RunInfo]
    test: ExamSet
    validation: ExamSet | None  # None: no run predicted a validation exam with a reference
    test_pixels: PixelSet | None  # None: no predicted test exam in the reference labelset
    val_pixels: PixelSet | None
    retest: RetestData | None
    notes: list[str] = field(default_factory=list)
    runs_from: str = "given"  # how the runs were chosen (report.json settings.runs_from)
    effort: list[dict] = field(default_factory=list)  # model-assisted labeling (stats/effort.py)

    @property
    def run_names(self) -> list[str]:
        return [r.name for r in self.runs]

    def run(self, name: str) -> RunInfo:
        return next(r for r in self.runs if r.name == name)


# ---------------------------------------------------------------------------
# gathering


def _hemorrhage(labels: np.ndarray) -> np.ndarray:
    return (labels > 0) & (labels != IGNORE)


def _majority(votes: list[int]) -> int:
    return int(2 * sum(votes) > len(votes))


def _exam_set(
    ws: Workspace, role: str, runs: Sequence[str], predicted: dict[str, set[str]], notes: list[str]
) -> ExamSet | None:
    """Exams of `role` that every run in `runs` predicted and that have a reference."""
    in_ref = set(ws.labelset_exams(REFERENCE_LABELSET))
    exams, labels, sources, excluded, sites = [], [], [], [], set()
    sub_rows: list[dict[str, int] | None] = []
    for e in ws.exams(role=role):
        missing = [r for r in runs if e.name not in predicted[r]]
        if missing:
            excluded.append((e.name, f"no prediction from {', '.join(missing)}"))
            continue
        reads = ws.exam_reads(e.name)
        by_finding: dict[str, list[int]] = {}
        for (_, finding), v in reads.items():
            by_finding.setdefault(finding, []).append(int(v))
        if "ICH" in by_finding:
            label, source = _majority(by_finding["ICH"]), "reads"
        elif e.name in in_ref:
            mask = ws.load_labels(REFERENCE_LABELSET, e.name)
            label, source = int(_hemorrhage(mask).any()), "reference mask"
        else:
            excluded.append((e.name, "no reads and no reference mask"))
            continue
        exams.append(e.name)
        sites.add(e.site)
        labels.append(bool(label))
        sources.append(source)
        has_all = all(f in by_finding for f in FINDINGS)
        sub_rows.append({f: _majority(by_finding[f]) for f in SUBTYPES} if has_all else None)
    if not exams:
        if excluded:
            notes.append(f"{role} role: no usable exam ({len(excluded)} excluded)")
        return None
    scores = {}
    for r in runs:
        s = np.array([ws.read_prediction(r, e, pixels=False).exam_score for e in exams])
        bad = [e for e, v in zip(exams, s) if not np.isfinite(v)]
        if bad:
            raise IctviewError(f"{ws.prediction_path(r, bad[0])}: exam score is not finite")
        scores[r] = s
    has_sub = np.array([row is not None for row in sub_rows])
    subtypes = {f: np.array([bool(row and row[f]) for row in sub_rows]) for f in SUBTYPES}
    if excluded:
        notes.append(f"{role} role: {len(excluded)} exam(s) excluded (see data.{role}.excluded)")
    return ExamSet(role, exams, np.array(labels, bool), sources, scores, subtypes, has_sub,
                   excluded, sorted(sites))  # fmt: skip


def _pixel_sets(
    ws: Workspace,
    plan: dict[str, list[str]],
    runs: Sequence[str],
    progress: Progress | None,
    stage: str,
    agreement: Sequence[str] = (),
) -> tuple[dict[str, PixelSet], dict[str, np.ndarray]]:
    """Every run's histograms against the labelsets planned per exam (exam -> labelsets).

    Each prediction and label file is read once, however many labelsets use it.
    For the labelsets in `agreement` also returns, per exam that has them all, their
    hemorrhage masks restricted to the voxels where any of them has hemorrhage
    ((labelsets, voxels) bool): the intra-rater agreement needs only those voxels.
    """
    labelsets = list(dict.fromkeys(ls for lss in plan.values() for ls in lss))
    parts = {ls: {r: [] for r in runs} for ls in labelsets}
    exams_of: dict[str, list[str]] = {ls: [] for ls in labelsets}
    unions: dict[str, np.ndarray] = {}
    for i, (exam, lss) in enumerate(plan.items()):
        if progress:
            progress(i, len(plan), stage)
        masks = {}
        for ls in lss:
            m = ws.load_labels(ls, exam)
            if m is None:
                raise IctviewError(f"{ws.label_path(ls, exam)}: label file missing")
            masks[ls] = m
            exams_of[ls].append(exam)
        if agreement and all(ls in masks for ls in agreement):
            hem = [_hemorrhage(masks[ls]) for ls in agreement]
            union = np.logical_or.reduce(hem)
            unions[exam] = np.stack([h[union] for h in hem])
        for r in runs:
            prob = ws.read_prediction(r, exam).prob
            for ls, m in masks.items():
                try:
                    parts[ls][r].append(PixelStats.from_volumes([(exam, prob, m)]))
                except IctviewError as e:
                    raise IctviewError(f"{ws.prediction_path(r, exam)}: {e}") from None
    if progress:
        progress(len(plan), len(plan), stage)
    sets = {
        ls: PixelSet(ls, exams_of[ls], {r: PixelStats.concat(parts[ls][r]) for r in runs})
        for ls in labelsets
    }
    return sets, unions


def retest_labelsets(ws: Workspace) -> list[str]:
    """retest-1, retest-2, ... present in the workspace, in repetition order."""
    found = [(int(m.group(1)), ls["name"]) for ls in ws.labelsets()
             if (m := RETEST_PATTERN.match(ls["name"]))]  # fmt: skip
    return [name for _, name in sorted(found)]


def model_runs(ws: Workspace) -> tuple[list[str], list[str]]:
    """(every model run that predicted every test exam, in table order; notes on those left out).

    Table order: the baseline first (the teacher most other model runs name as their parent,
    so Table 4's tests and the deltas are against it), then students, the no-ranker
    ablation, the oracles (each kind oldest first), then the other teachers (the contrast
    variants of Table 2).
    """
    test = {e.name for e in ws.exams(role="test")}
    rows = [r for r in ws.runs() if r.get("kind") in MODEL_KINDS]
    kept, notes = [], []
    for r in rows:
        have = len(test & set(ws.predicted_exams(r["name"])))
        if test and have == len(test):
            kept.append(r)
        elif have == 0:
            notes.append(f"run '{r['name']}' ({r['kind']}) left out: no test predictions "
                         f"(ictview-train evaluate --run {r['name']})")  # fmt: skip
        else:
            notes.append(f"run '{r['name']}' ({r['kind']}) left out: predicted {have} of "
                         f"{len(test)} test exams (ictview-train evaluate --run {r['name']})")
    teachers = [r for r in kept if r["kind"] == "teacher"]
    children = [r.get("parent") for r in kept]
    # max() keeps the first of equals: the oldest teacher when no run names a parent
    baseline = max(teachers, key=lambda t: children.count(t["name"])) if teachers else None
    rank = {k: i for i, k in enumerate(MODEL_KINDS)}

    def order(r: dict) -> int:
        if r is baseline:
            return 0
        return len(MODEL_KINDS) if r["kind"] == "teacher" else rank[r["kind"]]

    # sorted() is stable: within a group the catalog's order (oldest first) stays
    return [r["name"] for r in sorted(kept, key=order)], notes


def gather(ws: Workspace, runs: Sequence[str], progress: Progress | None = None) -> ReportData:
    """Everything the report's tables need, read from the workspace (see module doc)."""
    if not runs:
        raise IctviewError(f"{ws.root}: no runs given")
    dupes = sorted({r for r in runs if list(runs).count(r) > 1})
    if dupes:
        raise IctviewError(f"{ws.root}: run '{dupes[0]}' given twice")
    infos = []
    for name in runs:
        row = ws.run(name)
        if row is None:
            known = ", ".join(r["name"] for r in ws.runs()) or "none"
            raise IctviewError(f"{ws.root}: no run named '{name}' (runs: {known})")
        infos.append(RunInfo.from_row(row))
    # blinding (ictview/store/read_guard.py): refuse rather than report on fewer exams
    ws.guard.require_unblinded([e.name for role in ("test", "validation")
                                for e in ws.exams(role=role)], "the report")
    predicted = {r: set(ws.predicted_exams(r)) for r in runs}
    test_names = {e.name for e in ws.exams(role="test")}
    if not test_names:
        raise IctviewError(f"{ws.root}: no exams with role 'test'")
    for r in runs:
        if not predicted[r] & test_names:
            raise IctviewError(f"{ws.root}: run '{r}' has no predictions on the test role")
    notes: list[str] = []
    test = _exam_set(ws, "test", runs, predicted, notes)
    if test is None:
        raise IctviewError(f"{ws.root}: no test exam is predicted by every run and has a reference")

    val_names = {e.name for e in ws.exams(role="validation")}
    val_runs = [r for r in runs if predicted[r] & val_names]
    for r in runs:
        if r not in val_runs:
            notes.append(f"run '{r}' has no validation predictions: no Dice threshold, "
                         "not in the validation tables")  # fmt: skip
    validation = _exam_set(ws, "validation", val_runs, predicted, notes) if val_runs else None

    in_ref = set(ws.labelset_exams(REFERENCE_LABELSET))
    test_pixels = None
    retest = None
    reps = retest_labelsets(ws)
    if reps:
        rep_exams = set.intersection(*(set(ws.labelset_exams(r)) for r in reps))
        rep_exams = sorted(rep_exams & set(test.exams))
    else:
        rep_exams = []
    subset = sorted(in_ref & set(test.exams))
    # one pass over the test exams with pixel labels: reference and repetitions together
    plan = {e: [REFERENCE_LABELSET] if e in subset else [] for e in sorted({*subset, *rep_exams})}
    for e in rep_exams:
        plan[e] += reps
    sets, unions = (
        _pixel_sets(ws, plan, runs, progress, "pixel-labeled test exams", agreement=reps)
        if plan
        else ({}, {})
    )
    if subset:
        test_pixels = sets[REFERENCE_LABELSET]
    else:
        notes.append("no test exam in the 'reference' labelset: no subset Dice / pixel AP")
    if rep_exams:
        retest = RetestData(
            rep_exams, reps, {rep: sets[rep] for rep in reps},
            {rep: [unions[e][i] for e in rep_exams] for i, rep in enumerate(reps)},
            [ws.exam(e).voxel_ml for e in rep_exams],
        )  # fmt: skip
    elif reps:
        notes.append(f"labelsets {', '.join(reps)} share no predicted test exam: no Table 4")

    val_pixels = None
    if validation is not None:
        val_subset = sorted(in_ref & set(validation.exams))
        if val_subset:
            plan = {e: [REFERENCE_LABELSET] for e in val_subset}
            sets, _ = _pixel_sets(ws, plan, val_runs, progress, "pixel-labeled validation exams")
            val_pixels = sets[REFERENCE_LABELSET]
        else:
            notes.append("no validation exam in the 'reference' labelset: no Dice threshold")
    from ictview.stats.effort import effort_by_run

    return ReportData(str(ws.root), infos, test, validation, test_pixels, val_pixels, retest,
                      notes, effort=effort_by_run(ws))  # fmt: skip
