"""Training configuration: TOML files in ``ictview/resources/configs/`` -> checked dataclasses.

One ``Config`` holds every section; a file only needs the keys it changes (defaults are the
paper's where the paper gives a value, documented choices otherwise). Every problem is one line
naming the file and the key: ``paper.toml: train.batch_size must be an integer, got 'x'``.

Sections: [model] [preprocess] [augment] [data] [optim] [train] [ranker] [student] [inference]
[evaluate] [study]. ``--set section.key=value`` on the command line overrides one key (the value
is parsed as TOML, falling back to a plain string).
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ictview import resources
from ictview.core.brain_mask import BrainMaskConfig
from ictview.errors import IctviewError
from training.augment_config import CONTRAST_VARIANTS, AugmentConfig
from training.drn_layout import DRN_D_38_BLOCKS
from training.window_spec import resolve_windows

CONFIG_DIR_ENV = "ICTVIEW_CONFIG_DIR"
SLICE_SCORES = ("cls", "max_pixel")
EXAM_SCORES = ("max", "mean_top2", "mean_top3", "noisy_or")
# inference.exam_score = "auto": the aggregation chosen on the validation role at the end of
# training (training/calibration.py), stored with the run; "max" until then
EXAM_SCORE_AUTO = "auto"
SLICE_SCORE_AUTO = "auto"  # likewise: cls or max_pixel, chosen on the validation role
CALIBRATIONS = ("off", "temperature")
CLS_PRIORS = ("sampled", "true")
INFERENCE_MODES = ("whole", "sliding")


@dataclass
class ModelSection:
    width: float = 1.0  # channel multiplier of DRN-D-38 (1.0 = the paper's ~26M parameters)
    blocks: tuple[int, ...] = DRN_D_38_BLOCKS
    num_classes: int = 2
    cls_pool: str = "avg"
    # input windows (training.windows): presets or {name, center, width} tables
    windows: list[Any] = field(default_factory=lambda: ["brain", "subdural", "bone"])


@dataclass
class DataSection:
    labelset: str = "reference"  # pixel labels of the labeled role
    # chance that a labeled sample comes from a slice with a positive pixel (None: uniform over
    # slices); the crop balance inside a slice is augment.positive_fraction
    slice_positive_fraction: float | None = 0.5
    # share of labeled samples in a student minibatch (paper 0.6 : 0.4); exact over batches
    mix_labeled: float = 0.6
    # how pseudo-labeled slices are drawn: same balance rule over pseudo-positive slices
    pseudo_positive_fraction: float | None = 0.5
    # the patch-label prior the patch head is trained against: "sampled" (whatever the balance
    # rules above draw; they over-draw positives for the segmentation head), "true" (each
    # source's own positive-slice rate, as if slices were drawn uniformly) or a number in
    # (0, 1). Not "sampled": the classification loss is importance re-weighted per source,
    # positives by prior / q and negatives by (1 - prior) / (1 - q), q = the source's
    # sampling rate of positive slices (training/data/sources.py, cls_prior_weights)
    cls_prior: float | str = "sampled"
    # the byte budget of a process's working set of masked HU, label and pseudo-label slices
    # (training/data/exam_cache.py, LRU): memory does not grow with the number of exams
    cache_mb: float = 256.0


@dataclass
class OptimSection:
    name: str = "sgd"  # "sgd" or "adamw"
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "poly"  # "poly" or "constant"
    poly_power: float = 0.9
    warmup_steps: int = 0
    grad_clip: float = 0.0  # max grad norm; 0 = off


@dataclass
class TrainSection:
    epochs: int = 600
    steps_per_epoch: int = 240
    batch_size: int = 16  # global: split over DDP ranks
    seg_weight: float = 1.0
    cls_weight: float = 1.0
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1"
    amp: str = "auto"  # "auto" (bf16 on CUDA), "bf16", "off"
    channels_last: str = "auto"  # "auto" (on CUDA), "on", "off"
    compile: str = "off"  # "auto" (on CUDA), "on", "off"
    log_every_steps: int = 10
    checkpoint_every_steps: int = 0  # 0: at every epoch end
    val_every_epochs: int = 1  # 0: no validation (no "best" checkpoint)
    val_metric: str = "pixel_ap"  # "pixel_ap" or "exam_auc" on the validation role
    val_max_exams: int = 0  # 0: all validation exams
    torch_threads: int = 0  # 0: torch's default
    # processes planning, reading and (on a CPU run) rendering batches ahead of the model
    # (torch DataLoader workers, each opening the workspace read-only); 0: in this process
    # (a planning thread); -1: up to 8 on CUDA, none on a CPU. Batches are the same either way
    loader_workers: int = 0


@dataclass
class RankerSection:
    top_percent: float = 10.0  # C: top C% of unlabeled images (by image probability) positive
    k_hi: float = 0.7  # inside positives: pixel 1 where p > k_hi
    k_lo: float = 0.3  # 0 where p < k_lo, 255 (ignored) in between
    enabled: bool = True  # False: the no-ranker ablation (K thresholds on every image)


@dataclass
class StudentSection:
    init: str = "teacher"  # "teacher" (Noisy Student) or "scratch"
    iterations: int = 1  # student -> next teacher rounds


@dataclass
class InferenceSection:
    mode: str = "whole"  # "whole" slice or "sliding" window
    batch_size: int = 16  # slices (whole) or tiles (sliding)
    tile: int = 0  # sliding window side; 0: augment.crop
    overlap: float = 0.5  # sliding windows overlap
    # "cls" (patch head, max over crop-sized windows), "max_pixel" or "auto" (chosen on the
    # validation role at the end of training, training/calibration.py)
    slice_score: str = "cls"
    exam_score: str = "max"  # "max", "mean_top2", "mean_top3", "noisy_or" or "auto"
    # "temperature": at the end of training the patch head's slice logits are temperature-
    # scaled on the validation role only (training/calibration.py); stored in the checkpoint
    calibration: str = "off"
    # processes reading exams + extracting the brain ahead of the model (pseudolabel and
    # evaluate); -1: up to 8 on CUDA, none on CPU
    loader_workers: int = -1
    # what a pseudolabel run stores per exam besides the slice scores: "float16" probability
    # maps (any K can be chosen afterwards, in the app's ranker review too) or "targets", the
    # ranker's pixel targets at this config's ranker.k_hi / k_lo of the slices where they are
    # not all 0 (about 1 % of the float16 bytes: `ictview bench storage`); the student's
    # labels are the same either way. Evaluation always stores exact float16.
    pseudo_store: str = "float16"


@dataclass
class EvaluateSection:
    roles: list[str] = field(default_factory=lambda: ["validation", "test"])
    labelset: str = "reference"
    target_sensitivity: float = 0.92
    n_boot: int = 1000  # bootstrap samples for the confidence intervals
    dice_threshold: float = 0.5  # when no validation threshold can be chosen


@dataclass
class StudySection:
    contrast_variants: list[str] = field(default_factory=lambda: ["none", "power", "log"])
    image_oracle: bool = True
    pixel_oracle: bool = True
    no_ranker: bool = True
    prefix: str = ""  # run names: f"{prefix}baseline", ...


@dataclass
class Config:
    model: ModelSection = field(default_factory=ModelSection)
    preprocess: BrainMaskConfig = field(default_factory=BrainMaskConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: TrainSection = field(default_factory=TrainSection)
    ranker: RankerSection = field(default_factory=RankerSection)
    student: StudentSection = field(default_factory=StudentSection)
    inference: InferenceSection = field(default_factory=InferenceSection)
    evaluate: EvaluateSection = field(default_factory=EvaluateSection)
    study: StudySection = field(default_factory=StudySection)
    source: str = "defaults"  # the file it came from (not a TOML key)

    def to_dict(self) -> dict:
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            out[f.name] = _plain(dataclasses.asdict(getattr(self, f.name)))
        return out

    def total_steps(self) -> int:
        return self.train.epochs * self.train.steps_per_epoch


def _plain(v):
    """asdict output -> TOML-able values; None becomes "none" (TOML has no null)."""
    if v is None:
        return "none"
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


# ---- loading -------------------------------------------------------------------------------


def config_dirs() -> list[Path]:
    """Where preset names are looked up: $ICTVIEW_CONFIG_DIR, then the configs the
    ``ictview`` package carries as package data (``ictview/resources/configs``)."""
    dirs = []
    if os.environ.get(CONFIG_DIR_ENV):
        dirs.append(Path(os.environ[CONFIG_DIR_ENV]))
    dirs.append(resources.CONFIGS)
    return dirs


def find_config(name_or_path: str | Path) -> Path:
    """A file path, or a preset name ("paper", "tiny") from config_dirs()."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or os.sep in str(name_or_path):
        if not p.is_file():
            raise IctviewError(f"{p}: config file not found")
        return p
    for d in config_dirs():
        cand = d / f"{name_or_path}.toml"
        if cand.is_file():
            return cand
    known = sorted({q.stem for d in config_dirs() if d.is_dir() for q in d.glob("*.toml")})
    raise IctviewError(
        f"{name_or_path}: no such config (a .toml path or one of: {', '.join(known) or 'none'})"
    )


def load_config(name_or_path: str | Path = "paper", overrides: list[str] | None = None) -> Config:
    path = find_config(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise IctviewError(f"{path.name}: unreadable ({e.__class__.__name__})") from None
    except tomllib.TOMLDecodeError as e:
        raise IctviewError(f"{path.name}: not valid TOML ({e})") from None
    cfg = config_from_dict(data, path.name)
    cfg.source = str(path)
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg


def parse_override(text: str) -> tuple[str, str, Any]:
    """'section.key=value' -> (section, key, value parsed as TOML, else the string)."""
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise IctviewError(f"--set {text}: expected section.key=value")
    lhs, raw = text.split("=", 1)
    section, key = lhs.strip().split(".", 1)
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return section, key, value


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    data = cfg.to_dict()
    for text in overrides:
        section, key, value = parse_override(text)
        data.setdefault(section, {})[key] = value
    out = config_from_dict(data, "--set")
    out.source = cfg.source
    return out


def config_from_dict(data: dict, source: str = "config") -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config) if f.name != "source"}
    kwargs = {}
    for name, value in data.items():
        if name not in sections:
            raise IctviewError(f"{source}: unknown section [{name}] (known: {', '.join(sections)})")
        if not isinstance(value, dict):
            raise IctviewError(f"{source}: [{name}] must be a table")
        kwargs[name] = _build_section(sections[name].default_factory, value, f"{source}", name)
    cfg = Config(**kwargs)
    _validate(cfg, source)
    return cfg


def _build_section(cls, values: dict, source: str, section: str):
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise IctviewError(
                f"{source}: unknown key {section}.{key} (known: {', '.join(sorted(known))})"
            )
        kwargs[key] = _coerce(value, hints[key], f"{source}: {section}.{key}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise IctviewError(f"{source}: [{section}] {e}") from None


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(value, tp, where: str):
    """A TOML value -> the annotated type, or a one-line error naming the key."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and (value is None
                                   or (isinstance(value, str) and value.lower() == "none")):
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except IctviewError as e:
                errors.append(str(e))
        raise IctviewError(errors[0] if errors else f"{where}: bad value {value!r}")
    if tp is Any:
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise IctviewError(f"{where} must be a list, got {value!r}")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        if origin is tuple and len(args) == 2 and args[1] is not Ellipsis:
            if len(value) != 2:
                raise IctviewError(f"{where} must be a list of 2 values, got {value!r}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        out = [_coerce(v, item, where) for v in value]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if not isinstance(value, bool):
            raise IctviewError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise IctviewError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise IctviewError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise IctviewError(f"{where} must be finite, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise IctviewError(f"{where} must be a string, got {value!r}")
        return value
    raise IctviewError(f"{where}: unsupported type {_type_name(tp)}")


def _need(cond: bool, source: str, key: str, what: str, value) -> None:
    if not cond:
        raise IctviewError(f"{source}: {key} must be {what}, got {value!r}")


def _validate(cfg: Config, source: str) -> None:
    m, t, o, r, d, i = cfg.model, cfg.train, cfg.optim, cfg.ranker, cfg.data, cfg.inference
    _need(m.width > 0, source, "model.width", "> 0", m.width)
    _need(len(m.blocks) == 8, source, "model.blocks", "8 stage depths", list(m.blocks))
    _need(m.num_classes >= 2, source, "model.num_classes", ">= 2", m.num_classes)
    _need(m.cls_pool in ("avg", "max"), source, "model.cls_pool", "'avg' or 'max'", m.cls_pool)
    resolve_windows(m.windows, f"{source}: model.windows")
    _need(cfg.augment.contrast in CONTRAST_VARIANTS, source, "augment.contrast",
          f"one of {', '.join(CONTRAST_VARIANTS)}", cfg.augment.contrast)
    for key in ("epochs", "steps_per_epoch", "batch_size"):
        _need(getattr(t, key) >= 1, source, f"train.{key}", ">= 1", getattr(t, key))
    _need(t.amp in ("auto", "bf16", "off"), source, "train.amp", "auto, bf16 or off", t.amp)
    for key in ("channels_last", "compile"):
        _need(getattr(t, key) in ("auto", "on", "off"), source, f"train.{key}", "auto, on or off",
              getattr(t, key))
    _need(t.val_metric in ("pixel_ap", "exam_auc"), source, "train.val_metric",
          "pixel_ap or exam_auc", t.val_metric)
    _need(o.name in ("sgd", "adamw"), source, "optim.name", "sgd or adamw", o.name)
    _need(o.lr > 0, source, "optim.lr", "> 0", o.lr)
    _need(o.schedule in ("poly", "constant"), source, "optim.schedule", "poly or constant",
          o.schedule)
    _need(0 < r.top_percent <= 100, source, "ranker.top_percent", "in (0, 100]", r.top_percent)
    _need(0 <= r.k_lo <= r.k_hi <= 1, source, "ranker.k_lo/k_hi", "0 <= k_lo <= k_hi <= 1",
          (r.k_lo, r.k_hi))
    _need(0 <= d.mix_labeled <= 1, source, "data.mix_labeled", "in [0, 1]", d.mix_labeled)
    _need(d.cache_mb >= 0, source, "data.cache_mb", ">= 0 (MB)", d.cache_mb)
    for key in ("slice_positive_fraction", "pseudo_positive_fraction"):
        v = getattr(d, key)
        _need(v is None or 0 <= v <= 1, source, f"data.{key}", "in [0, 1] or none", v)
    _need(cfg.student.init in ("teacher", "scratch"), source, "student.init",
          "teacher or scratch", cfg.student.init)
    _need(cfg.student.iterations >= 1, source, "student.iterations", ">= 1",
          cfg.student.iterations)
    _need(i.mode in INFERENCE_MODES, source, "inference.mode", "whole or sliding", i.mode)
    _need(i.slice_score in SLICE_SCORES + (SLICE_SCORE_AUTO,), source, "inference.slice_score",
          " or ".join(SLICE_SCORES + (SLICE_SCORE_AUTO,)), i.slice_score)
    _need(i.exam_score in EXAM_SCORES + (EXAM_SCORE_AUTO,), source, "inference.exam_score",
          ", ".join(EXAM_SCORES + (EXAM_SCORE_AUTO,)), i.exam_score)
    _need(i.calibration in CALIBRATIONS, source, "inference.calibration",
          " or ".join(CALIBRATIONS), i.calibration)
    cp = d.cls_prior
    _need(cp in CLS_PRIORS or (isinstance(cp, float) and 0 < cp < 1), source,
          "data.cls_prior", "sampled, true or a number in (0, 1)", cp)
    _need(0 <= i.overlap < 1, source, "inference.overlap", "in [0, 1)", i.overlap)
    _need(i.batch_size >= 1, source, "inference.batch_size", ">= 1", i.batch_size)
    _need(i.pseudo_store in ("float16", "targets"), source, "inference.pseudo_store",
          "float16 or targets", i.pseudo_store)
    _need(i.loader_workers >= -1, source, "inference.loader_workers", ">= -1", i.loader_workers)
    _need(t.loader_workers >= -1, source, "train.loader_workers", ">= -1", t.loader_workers)
    for v in cfg.study.contrast_variants:
        _need(v in CONTRAST_VARIANTS, source, "study.contrast_variants",
              f"names from {', '.join(CONTRAST_VARIANTS)}", v)
    for role in cfg.evaluate.roles:
        _need(role in ("labeled", "unlabeled", "validation", "test"), source, "evaluate.roles",
              "workspace roles", role)


# ---- writing (config.toml in the run folder) ------------------------------------------------


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def dumps_toml(data: dict, header: str = "") -> str:
    """Tables of scalars / lists / inline tables (all this config has)."""
    lines = [f"# {line}" for line in header.splitlines()]
    for section, values in data.items():
        lines.append(f"\n[{section}]")
        for k, v in values.items():
            if v is not None:
                lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines).lstrip("\n") + "\n"


def save_config(cfg: Config, path: Path, header: str = "") -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps_toml(cfg.to_dict(), header or f"from {cfg.source}"))
    os.replace(tmp, path)
