"""Inference: a trained PatchFCN over whole exams -> pixel probabilities, slice and exam scores.

Separate from the trainer (the GUI and ``pseudolabel`` / ``evaluate`` use it alone). Input
preprocessing is the training one: brain extraction with the checkpoint's settings, then the
checkpoint's windows.

Modes (``inference.mode``; the paper does not fix them):

- ``whole`` (default): each slice in one forward pass. Pixel probability = 1 - p(background)
  from the segmentation head. The patch head's slice score is computed as if the patch head
  ran on every crop-sized window: its pooling (avg or max) over every (crop/8)^2 window of
  the stride-8 feature map, the linear head at each, the maximum over windows. That is the
  training-time question ("does this 240 x 240 patch contain blood?") asked everywhere in one
  pass; pooling the whole 512 x 512 slice at once would dilute a small bleed in the average.
- ``sliding``: tiles of ``tile`` pixels (default: the training crop) with ``overlap``;
  probabilities averaged where tiles overlap; slice score from the patch head = the max over
  tiles.

Slice score (``inference.slice_score``): ``cls`` (patch head, above; default, it ranks
images better than a pixel maximum under site shift, see DESIGN.md Facts) or ``max_pixel``
(the highest pixel probability in the slice). Exam score (``inference.exam_score``): ``max``
of the slice scores (default), ``mean_top2`` / ``mean_top3`` (mean of the 2 / 3 highest) or
``noisy_or`` (1 - prod(1 - s)); ``auto``: the one chosen on the validation role at the end of
training (training/calibration.py; ``max`` for a checkpoint without that choice).

Granularity: with a crop as large as the slice (the cpu-study preset) "every crop-sized
window" is one window, the whole slice: the head answers exactly the question it was trained
on. Taking the maximum over ~100 smaller windows of 8 slices is what made exam scores
saturate near 1 on every exam (DESIGN.md, Facts 2026-12): each window is another chance for a
false positive.

Calibration: slice scores are sigmoid(logit / T). T = 1 unless the checkpoint carries a
temperature fitted on the validation role (``inference.calibration = "temperature"``); a
temperature never changes a ranking, only how the numbers read and how noisy-or / top-k
aggregations combine them.

Pixels outside the brain mask get probability 0: the network never saw them.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ictview.core.brain_mask import BrainMaskConfig, strip_skull
from ictview.errors import IctviewError
from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from training.config import (
    EXAM_SCORE_AUTO,
    EXAM_SCORES,
    SLICE_SCORE_AUTO,
    INFERENCE_MODES,
    SLICE_SCORES,
    InferenceSection,
    apply_overrides,
    config_from_dict,
)
from training.models import PatchFCN, PatchFCNConfig
from training.windows import Window, apply_windows_batch, resolve_windows

Progress = Callable[[int, int, str], None]


def aggregate_exam(slice_scores: np.ndarray, how: str = "max") -> float:
    s = np.asarray(slice_scores, np.float64).ravel()
    if s.size == 0:
        return 0.0
    if how == "max":
        return float(s.max())
    if how == "mean_top2":
        return float(np.sort(s)[-2:].mean())
    if how == "mean_top3":
        return float(np.sort(s)[-3:].mean())
    if how == "noisy_or":
        return float(1.0 - np.prod(1.0 - np.clip(s, 0.0, 1.0)))
    raise IctviewError(
        f"exam score aggregation must be one of {', '.join(EXAM_SCORES)}, got {how!r}"
    )


def _logit(p: torch.Tensor) -> torch.Tensor:
    """Probability -> logit, clamped so a pixel probability of exactly 0 or 1 stays finite."""
    p = p.float().clamp(1e-7, 1 - 1e-7)
    return torch.log(p) - torch.log1p(-p)


def unwrap(model: torch.nn.Module) -> PatchFCN:
    """The PatchFCN under DDP / torch.compile wrappers."""
    m = model
    for attr in ("module", "_orig_mod"):
        while hasattr(m, attr) and isinstance(getattr(m, attr), torch.nn.Module):
            m = getattr(m, attr)
    return m  # type: ignore[return-value]


def hemorrhage_probability(seg_logits: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) logits -> (N, H, W) P(any hemorrhage class) = 1 - P(background)."""
    return 1.0 - torch.softmax(seg_logits.float(), dim=1)[:, 0]


class Predictor:
    def __init__(
        self,
        model: torch.nn.Module,
        windows: Sequence[Window],
        brain: BrainMaskConfig,
        settings: InferenceSection | None = None,
        crop: int = 240,
        device: torch.device | str = "cpu",
        amp: bool = False,
        channels_last: bool = False,
        calibration: dict | None = None,
    ):
        settings = settings or InferenceSection()
        self.requested_slice_score = settings.slice_score  # before "auto" is resolved
        # calibration: {"temperature": T, "exam_score": chosen, ...} (training/calibration.py)
        self.calibration = calibration if settings.calibration != "off" else None
        self.temperature = float(self.calibration["temperature"]) if self.calibration else 1.0
        if settings.exam_score == EXAM_SCORE_AUTO:
            chosen = (calibration or {}).get("exam_score", "max")
            settings = replace(settings, exam_score=chosen)
        if settings.slice_score == SLICE_SCORE_AUTO:
            chosen = (calibration or {}).get("slice_score", "cls")
            settings = replace(settings, slice_score=chosen)
        self.settings = settings
        s = self.settings
        if s.mode not in INFERENCE_MODES or s.slice_score not in SLICE_SCORES:
            raise IctviewError(f"inference: bad mode {s.mode!r} or slice score {s.slice_score!r}")
        aggregate_exam(np.zeros(1), s.exam_score)  # validates the name
        self.device = torch.device(device)
        self.model = unwrap(model).to(self.device).eval()
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.channels_last = channels_last
        self.amp = amp
        self.windows = tuple(windows)
        self.brain = brain
        self.crop = int(crop)
        self.tile = int(s.tile or crop)

    # -- construction from a checkpoint -----------------------------------------------------

    @classmethod
    def from_checkpoint(
        cls,
        path: Path | str,
        device: torch.device | str = "cpu",
        settings: InferenceSection | None = None,
        amp: bool | None = None,
        channels_last: bool | None = None,
        overrides: Sequence[str] = (),
    ) -> Predictor:
        """The model, windows, brain extraction and (unless ``settings``) inference settings
        of a checkpoint; ``overrides`` ("inference.mode=sliding", ...) change the latter."""
        path = Path(path)
        if not path.is_file():
            raise IctviewError(f"{path}: checkpoint not found")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # a torn or foreign file
            raise IctviewError(
                f"{path}: not a readable checkpoint ({e.__class__.__name__})"
            ) from None
        try:
            model = PatchFCN(PatchFCNConfig.from_dict(ck["model_config"]))
            model.load_state_dict(ck["model"])
            cfg = ck["config"]
        except (KeyError, RuntimeError, TypeError) as e:
            raise IctviewError(f"{path}: not an ictview-train checkpoint ({e})") from None
        windows = resolve_windows(cfg["model"]["windows"], str(path))
        brain = BrainMaskConfig(**cfg["preprocess"])
        if settings is None:
            run_cfg = config_from_dict({"inference": cfg.get("inference", {})}, str(path))
            if overrides:
                run_cfg = apply_overrides(run_cfg, list(overrides))
            settings = run_cfg.inference
        crop = cfg["augment"].get("crop")
        crop = 240 if crop in (None, "none") else int(crop)
        dev = torch.device(device)
        on_cuda = dev.type == "cuda"
        return cls(
            model, windows, brain, settings, crop, dev,
            amp=on_cuda if amp is None else amp,
            channels_last=on_cuda if channels_last is None else channels_last,
            calibration=ck.get("calibration"),
        )

    # -- forward ----------------------------------------------------------------------------

    def _autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _prepare(self, hu: torch.Tensor) -> torch.Tensor:
        x = apply_windows_batch(hu.to(self.device), self.windows)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    @torch.no_grad()
    def _whole(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, C, H, W) -> pixel probs (n, H, W), slice logits (n,) (from the chosen head)."""
        m = self.model
        with self._autocast():
            feats = m.backbone(x)
            seg = m.seg_head(feats)
            seg = F.interpolate(seg, size=x.shape[-2:], mode="bilinear", align_corners=False)
        prob = hemorrhage_probability(seg)
        feats = feats.float()
        k = max(1, self.crop // m.backbone.output_stride)
        kh, kw = min(k, feats.shape[-2]), min(k, feats.shape[-1])
        if m.config.cls_pool == "max":
            pooled = F.max_pool2d(feats, (kh, kw), stride=1)
        else:
            pooled = F.avg_pool2d(feats, (kh, kw), stride=1)
        w = m.cls_head.weight.float()  # (1, C)
        bias = m.cls_head.bias.float().view(1, -1, 1, 1)
        logits = torch.einsum("nchw,oc->nohw", pooled, w) + bias
        return prob, logits.flatten(1).amax(1)

    def _tiles(self, size: int) -> list[int]:
        t = self.tile
        if size <= t:
            return [0]
        stride = max(1, int(round(t * (1.0 - self.settings.overlap))))
        starts = list(range(0, size - t + 1, stride))
        if starts[-1] != size - t:
            starts.append(size - t)
        return starts

    @torch.no_grad()
    def _sliding(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        t = self.tile
        pad_h, pad_w = max(0, t - h), max(0, t - w)
        if pad_h or pad_w:  # windows are 0 outside the brain: pad with background
            x = F.pad(x, (0, pad_w, 0, pad_h))
        H, W = x.shape[-2:]
        acc = torch.zeros(n, H, W, device=x.device)
        hits = torch.zeros(1, H, W, device=x.device)
        best = torch.full((n,), -torch.inf, device=x.device)
        coords = [(y0, x0) for y0 in self._tiles(H) for x0 in self._tiles(W)]
        per = max(1, self.settings.batch_size // n) if n else 1
        for i in range(0, len(coords), per):
            chunk = coords[i : i + per]
            tiles = torch.cat([x[:, :, y0 : y0 + t, x0 : x0 + t] for y0, x0 in chunk])
            with self._autocast():
                out = self.model(tiles)
            prob = hemorrhage_probability(out.seg_logits).view(len(chunk), n, t, t)
            cls = out.cls_logits.float().view(len(chunk), n)
            for k, (y0, x0) in enumerate(chunk):
                acc[:, y0 : y0 + t, x0 : x0 + t] += prob[k]
                hits[:, y0 : y0 + t, x0 : x0 + t] += 1
            best = torch.maximum(best, cls.amax(0))
        prob = (acc / hits.clamp(min=1))[:, :h, :w]
        return prob, best

    # -- volumes and exams ----------------------------------------------------------------

    def predict_volume(self, hu: np.ndarray) -> Prediction:
        """(z, y, x) HU (raw, as stored) -> Prediction (float16 pixel probabilities)."""
        return self.predict_masked(*strip_skull(hu, self.brain))

    def forward_both(self, masked: np.ndarray,
                     mask: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Brain-masked HU and its mask -> float16 pixel probabilities and, per slice-score
        kind ("cls", "max_pixel"), float32 slice logits before any temperature."""
        z = masked.shape[0]
        probs = np.zeros(masked.shape, np.float16)
        logits = {k: np.zeros(z, np.float32) for k in SLICE_SCORES}
        step = self.settings.batch_size if self.settings.mode == "whole" else 1
        run = self._whole if self.settings.mode == "whole" else self._sliding
        for i in range(0, z, step):
            x = self._prepare(torch.from_numpy(masked[i : i + step]))
            p, s = run(x)
            p = p * torch.from_numpy(mask[i : i + step]).to(p.device)
            # float16 on the device: half the bytes over the bus, and what is stored anyway
            probs[i : i + step] = p.to(torch.float16).cpu().numpy()
            logits["cls"][i : i + step] = s.float().cpu().numpy()
            # from float32, inside the brain (float16 ties every pixel above 1 - 2^-11)
            logits["max_pixel"][i : i + step] = _logit(p.flatten(1).amax(1)).cpu().numpy()
        return probs, logits

    def forward_masked(self, masked: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Brain-masked HU and its mask -> float16 pixel probabilities, float32 slice logits of
        ``settings.slice_score`` (before the temperature)."""
        probs, logits = self.forward_both(masked, mask)
        return probs, logits[self.settings.slice_score]

    def scores(self, logits: np.ndarray) -> np.ndarray:
        """Slice logits -> calibrated slice probabilities sigmoid(logit / T)."""
        x = np.asarray(logits, np.float64) / self.temperature
        return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # overflow-free sigmoid

    def predict_masked(self, masked: np.ndarray, mask: np.ndarray) -> Prediction:
        """Brain-masked HU and its mask (``strip_skull`` with ``self.brain``) -> Prediction."""
        probs, logits = self.forward_masked(masked, mask)
        scores = self.scores(logits)
        attrs = {"inference": asdict(self.settings), "crop": self.crop,
                 "temperature": self.temperature}
        return Prediction(probs, scores, aggregate_exam(scores, self.settings.exam_score), attrs)

    def predict_exam(self, ws: Workspace, exam: str) -> Prediction:
        return self.predict_volume(ws.read_volume(exam).hu)

    def predict_exams(
        self,
        ws: Workspace,
        run: str,
        exams: Sequence[str],
        progress: Progress | None = None,
        attrs: dict | None = None,
        skip_existing: bool = False,
    ) -> int:
        """Predict and write each exam to WS/predictions/<run>/; returns slices predicted."""
        done = set(ws.predicted_exams(run)) if skip_existing else set()
        n_slices = 0
        for i, name in enumerate(exams):
            if name not in done:
                pred = self.predict_exam(ws, name)
                pred.attrs.update(attrs or {})
                pred.attrs["exam"] = name
                ws.write_prediction(run, name, pred)
                n_slices += pred.prob.shape[0]
            if progress:
                progress(i + 1, len(exams), "predicting")
        return n_slices


def slices_per_second(n_slices: int, seconds: float) -> float:
    return n_slices / seconds if seconds > 0 else math.nan
