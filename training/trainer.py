"""The trainer: one class with named hooks (nnU-Net style); variants override one hook.

Hooks: ``build_model``, ``build_optimizer``, ``build_dataloaders``, ``train_step``,
``validation_step``, ``on_epoch_end``, ``save_checkpoint``, ``load_checkpoint``. ``fit`` is the
short loop that calls them.

Defaults: SGD (momentum 0.9, weight decay 1e-4, none on BatchNorm and biases) with the poly
schedule lr = lr0 * (1 - step / total) ** 0.9; on CUDA bf16 autocast and channels_last
(``train.amp``, ``train.channels_last`` = "auto"; "bf16" / "on" force them, also on CPU);
``train.compile`` = "on" / "auto" (CUDA) wraps the model in torch.compile.

Checkpoints (WS/runs/<run>/checkpoints/): ``latest.pt`` at every epoch end (or every
``train.checkpoint_every_steps``) and on SIGTERM / SIGINT, ``best.pt`` when the validation
metric improves, ``final.pt`` at the end. Each holds the model, optimizer, scheduler, scaler,
step / epoch, the sampler state (seed + step: batches are a function of them, see
training/data/batches.py), the RNG states, the config, the model config and windows the predictor
needs, and the data fingerprint. Files are written to a temporary name and renamed, so a kill
at any moment leaves the previous checkpoint whole. ``resume=True`` loads ``latest.pt`` and
continues the same run: the same batches, the same next-step loss as if never stopped.

Loader processes (``train.loader_workers`` = N > 0, ``--loader-workers N``): batches are
planned, read and (on a CPU run) rendered in N torch DataLoader processes, spawned, each with
a pickled copy of the BatchMaker (its sources are file paths and plain arrays: every process
opens the stored files itself, read-only, and none opens the catalog). Batch s is still a
function of (seed, s), so a resumed run and a run without loader processes see the same
batches.

Stopping: SIGTERM / SIGINT -> checkpoint at the next step boundary, status "interrupted",
``fit`` returns (the CLI exits with EXIT_INTERRUPTED = 75, "try again": resume with
``--resume``). A NaN / inf loss -> ``NonFiniteLoss`` (CLI exit 3), no checkpoint is written
after it, so latest.pt stays the last good one. Finiteness is checked on the host at every log
step and before every checkpoint (not every step: that would sync the GPU each step).
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ictview.errors import IctviewError
from ictview.store.run_lock import RunLock
from ictview.store.workspace import Workspace
from training import distributed as D
from training.checkpoints import atomic_save
from training.config import Config, save_config
from training.data.batches import BatchMaker, Group, open_feed
from training.data.exam_loader import auto_workers
from training.data.exam_cache import ExamCache
from training.data.sources import (
    cls_prior_weights,
    fingerprint,
    image_oracle_source,
    labeled_source,
    pixel_oracle_source,
    pseudo_source,
)
from training.inference import Predictor, unwrap
from training.losses import patchfcn_loss
from training.models import PatchFCN, PatchFCNConfig, count_parameters
from training.progress import ProgressLog
from training.shared_workspace import open_view, share_catalog
from training.validation import validation_metric
from training.windows import resolve_windows

EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 75  # sysexits EX_TEMPFAIL: stopped on request, resume with --resume
CHECKPOINT_FORMAT = 1


class NonFiniteLoss(IctviewError):
    """The loss became NaN or infinite; the run stopped without writing a checkpoint."""


@dataclass
class FitResult:
    status: str  # "finished" or "interrupted"
    step: int
    run_dir: Path
    best: dict | None


def set_seeds(seed: int) -> None:
    """Global RNGs (the data pipeline uses its own seeded generators; this covers the model
    initialisation and anything else drawing from the global state)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    st = {"python": random.getstate(), "numpy": np.random.get_state(),
          "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _on(flag: str, device: torch.device) -> bool:
    return flag == "on" or (flag == "auto" and device.type == "cuda")


class Trainer:
    """The teacher: PatchFCN from scratch on the labeled role's pixel labels."""

    kind = "teacher"

    def __init__(
        self,
        ws_root: Path | str,
        run: str,
        cfg: Config,
        *,
        resume: bool = False,
        init_checkpoint: Path | str | None = None,
        parent: str | None = None,
        pseudolabel_run: str | None = None,
        json_progress: bool = False,
        quiet: bool = False,
    ):
        self.ws_root = Path(ws_root)
        self.run = run
        self.cfg = cfg
        self.resume = resume
        self.init_checkpoint = Path(init_checkpoint) if init_checkpoint else None
        self.parent = parent
        self.pseudolabel_run = pseudolabel_run
        self.json_progress = json_progress
        self.quiet = quiet
        self.step = 0
        self.best: dict | None = None
        self.calibration: dict | None = None  # training/calibration.py, fitted after the loop
        self.sources_summary: list[dict] = []
        self._stop = threading.Event()
        self._fingerprint = ""

    # ---- hooks ------------------------------------------------------------------------------

    def build_model(self) -> PatchFCN:
        m = self.cfg.model
        windows = resolve_windows(m.windows, self.cfg.source)
        return PatchFCN(PatchFCNConfig(
            in_channels=len(windows), num_classes=m.num_classes, width=m.width,
            blocks=tuple(m.blocks), cls_pool=m.cls_pool,
        ))

    def build_optimizer(self, model: torch.nn.Module):
        o = self.cfg.optim
        decay, no_decay = [], []
        for name, p in model.named_parameters():
            # no weight decay on BatchNorm and biases (the usual practice for ResNets)
            (no_decay if p.ndim <= 1 else decay).append(p)
        groups = [{"params": decay, "weight_decay": o.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if o.name == "sgd":
            opt = torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=o.nesterov)
        else:
            opt = torch.optim.AdamW(groups, lr=o.lr)
        total = max(1, self.cfg.total_steps())

        def factor(step: int) -> float:
            warm = min(1.0, (step + 1) / o.warmup_steps) if o.warmup_steps > 0 else 1.0
            if o.schedule == "constant":
                return warm
            return warm * max(0.0, 1.0 - step / total) ** o.poly_power

        return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)

    def build_sources(self, ws: Workspace, cache: ExamCache):
        """(sources, weights): the only part the student variants change."""
        return [labeled_source(ws, cache, self.cfg)], [1.0]

    def build_dataloaders(self, ws: Workspace) -> BatchMaker:
        cache = ExamCache(ws, self.cfg.preprocess, int(self.cfg.data.cache_mb * 2**20))
        sources, weights = self.build_sources(ws, cache)
        priors = [cls_prior_weights(s, self.cfg.data.cls_prior) for s in sources]
        self.cls_priors = priors
        self._w_pos = torch.tensor([p.w_pos for p in priors], device=self.device)
        self._w_neg = torch.tensor([p.w_neg for p in priors], device=self.device)
        self.sources_summary = [{**s.summary(), "cls_prior": p.to_dict()}
                                for s, p in zip(sources, priors)]
        self._fingerprint = fingerprint(sources)
        windows = resolve_windows(self.cfg.model.windows, self.cfg.source)
        return BatchMaker(sources, weights, self.cfg.train.batch_size, self.cfg.train.seed,
                          windows, self.dist.rank, self.dist.world)

    def compute_loss(self, group: Group):
        out = self.model(self._to_model(group.images))
        t = self.cfg.train
        weights = None
        if self.cfg.data.cls_prior != "sampled":
            weights = (self._w_pos[group.sources], self._w_neg[group.sources])
        return patchfcn_loss(out.seg_logits, out.cls_logits, group.labels, group.cls_target,
                             seg_weight=t.seg_weight, cls_weight=t.cls_weight,
                             prior_weights=weights)

    def train_step(self, groups: list[Group]) -> dict[str, torch.Tensor]:
        """One optimizer step over the groups of a batch (weighted by their sizes)."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        n = sum(len(g.labels) for g in groups)
        total = seg = cls = None
        with self._autocast():
            for g in groups:
                terms = self.compute_loss(g)
                w = len(g.labels) / n
                total = terms.total * w if total is None else total + terms.total * w
                seg = terms.seg * w if seg is None else seg + terms.seg * w
                cls = terms.cls * w if cls is None else cls + terms.cls * w
        total.backward()
        if self.cfg.optim.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.optim.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        return {"loss": total.detach(), "seg_loss": seg.detach(), "cls_loss": cls.detach()}

    def validation_step(self) -> dict | None:
        """Validation metric on the validation role (rank 0); None when there is nothing."""
        t = self.cfg.train
        exams = [e.name for e in self.ws.exams(role="validation")]
        if t.val_max_exams:
            exams = exams[: t.val_max_exams]
        if not exams:
            return None
        predictor = self.predictor()
        try:
            value = validation_metric(predictor, self.ws, exams, t.val_metric,
                                      self.cfg.data.labelset)
        finally:
            self.model.train()
        return {"metric": t.val_metric, "value": value, "exams": len(exams)}

    def on_epoch_end(self, epoch: int) -> None:
        t = self.cfg.train
        if self.dist.is_main and t.val_every_epochs and (epoch + 1) % t.val_every_epochs == 0:
            res = self.validation_step()
            if res is not None:
                self.log.event("validation", step=self.step, epoch=epoch + 1, **res)
                v = res["value"]
                better = self.best is None or (v is not None and v > self.best["value"])
                if v is not None and math.isfinite(v) and better:
                    self.best = {"metric": res["metric"], "value": v, "step": self.step}
                    self.save_checkpoint("best")
        if not t.checkpoint_every_steps:
            self.save_checkpoint("latest")

    def save_checkpoint(self, name: str) -> Path | None:
        if not self.dist.is_main:
            return None
        path = self.ckpt_dir / f"{name}.pt"
        model = unwrap(self.model)
        atomic_save({
            "format": CHECKPOINT_FORMAT,
            "kind": self.kind,
            "run": self.run,
            "parent": self.parent,
            "pseudolabel_run": self.pseudolabel_run,
            "model": model.state_dict(),
            "model_config": model.config.to_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "step": self.step,
            "epoch": self.step // self.cfg.train.steps_per_epoch,
            "sampler": {"seed": self.cfg.train.seed, "step": self.step,
                        "batch_size": self.cfg.train.batch_size},
            "rng": rng_state(),
            "config": self.cfg.to_dict(),
            "fingerprint": self._fingerprint,
            "sources": self.sources_summary,
            "best": self.best,
            "world": self.dist.world,
            "calibration": self.calibration,
        }, path)
        self.log.event("checkpoint", step=self.step, name=name, path=str(path))
        return path

    def load_checkpoint(self, path: Path) -> None:
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:
            raise IctviewError(
                f"{path}: not a readable checkpoint ({e.__class__.__name__})"
            ) from None
        if ck.get("format") != CHECKPOINT_FORMAT or "optimizer" not in ck:
            raise IctviewError(f"{path}: not an ictview-train checkpoint")
        if ck["kind"] != self.kind:
            raise IctviewError(f"{path}: is a {ck['kind']} checkpoint, not {self.kind}")
        unwrap(self.model).load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.scaler.load_state_dict(ck["scaler"])
        self.step = int(ck["step"])
        self.best = ck.get("best")
        self.calibration = ck.get("calibration")
        set_rng_state(ck["rng"])
        if ck.get("fingerprint") and ck["fingerprint"] != self._fingerprint:
            self.log.event("warning", message="training data changed since the checkpoint")
            self.log.message(f"{self.run}: warning: the training data changed since {path.name}")

    # ---- helpers -------------------------------------------------------------------------

    def _autocast(self):
        if self.amp:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def _to_model(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def predictor(self) -> Predictor:
        return Predictor(
            unwrap(self.model), resolve_windows(self.cfg.model.windows, self.cfg.source),
            self.cfg.preprocess, self.cfg.inference, self.cfg.augment.crop or 240,
            self.device, amp=self.amp, channels_last=self.channels_last,
            calibration=self.calibration,
        )

    def calibrate(self) -> None:
        """``inference.calibration = "temperature"``: fit T and choose the exam aggregation on
        the validation role (rank 0; the others wait at the next barrier), keep the result in
        the checkpoint and in calibration.json."""
        if self.cfg.inference.calibration == "off" or not self.dist.is_main:
            return
        from training.calibration import calibrate

        self.calibration = None
        try:
            self.calibration = calibrate(self.predictor(), self.ws, self.cfg.evaluate.labelset)
        finally:
            self.model.train()
        if self.calibration is None:
            self.log.message(f"{self.run}: no pixel-labeled validation exam: not calibrated")
            return
        path = self.run_dir / "calibration.json"
        tmp = path.with_name("calibration.json.tmp")
        tmp.write_text(json.dumps(self.calibration, indent=1))
        os.replace(tmp, path)
        c = self.calibration
        self.log.event("calibration", slice_score=c["slice_score"],
                       temperature=c["temperature"], exam_score=c["exam_score"],
                       exam_auc_by_aggregation=c["exam_auc_by_aggregation"],
                       nll_before=c["nll_before"], nll_after=c["nll_after"])

    def _init_weights_from(self, path: Path) -> None:
        """Noisy Student: the student starts from the teacher's weights (model only)."""
        if not path.is_file():
            raise IctviewError(f"{path}: teacher checkpoint not found")
        try:
            ck = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as e:  # a torn or foreign file: one line naming it, as load_checkpoint
            raise IctviewError(f"{path}: not a readable checkpoint ({e.__class__.__name__})") from None
        try:
            unwrap(self.model).load_state_dict(ck["model"])
        except (KeyError, RuntimeError) as e:
            raise IctviewError(
                f"{path}: teacher weights do not fit this model (same [model] needed): "
                f"{str(e).splitlines()[0]}"
            ) from None

    @contextmanager
    def _signals(self):
        """SIGTERM / SIGINT -> stop at the next step boundary (a second one: default action)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {}

        def handler(signum, _frame):
            if self._stop.is_set():
                signal.signal(signum, previous.get(signum, signal.SIG_DFL))
                os.kill(os.getpid(), signum)
                return
            self._stop.set()

        for s in (signal.SIGTERM, signal.SIGINT):
            previous[s] = signal.signal(s, handler)
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)

    def request_stop(self) -> None:
        self._stop.set()

    # ---- setup and the loop ----------------------------------------------------------------

    def setup(self) -> None:
        t = self.cfg.train
        if t.torch_threads:
            torch.set_num_threads(t.torch_threads)
        self.dist, self.device = D.init(t.device)
        # under torchrun only rank 0 opens the live catalog (training/shared_workspace.py)
        if self.dist.is_main:
            self.ws = Workspace.open(self.ws_root)
        self.run_dir = self.ws_root / "runs" / self.run
        self.ckpt_dir = self.run_dir / "checkpoints"
        latest = self.ckpt_dir / "latest.pt"
        refusal: IctviewError | None = None
        if self.dist.is_main:
            try:
                self._claim_run(latest)
            except IctviewError as e:
                refusal = e
        # under torchrun every rank stops on rank 0's refusal (instead of waiting at the
        # barrier for a rank that has left); rank 0 snapshots the catalog for the others
        share_catalog(getattr(self, "ws", None), self.ws_root, self.run, self.dist, refusal)
        if not self.dist.is_main:
            self.ws = open_view(self.ws_root, self.run)
        D.barrier(self.dist)
        # "auto": bf16 on CUDA only; "bf16" also on CPU (faster on CPUs with bf16 units: see
        # `ictview-train bench`, which measures it)
        self.amp = t.amp == "bf16" or (t.amp == "auto" and self.device.type == "cuda")
        self.channels_last = _on(t.channels_last, self.device)
        self.log = ProgressLog(
            self.run_dir / "progress.jsonl" if self.dist.is_main else None, self.run,
            json_stdout=self.json_progress, total=self.cfg.total_steps(),
            desc=f"{self.kind} {self.run}", console=self.dist.is_main and not self.quiet,
        )
        set_seeds(t.seed)
        model = self.build_model().to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer, self.scheduler = self.build_optimizer(model)
        self.scaler = torch.amp.GradScaler("cuda", enabled=False)  # bf16 needs no loss scaling
        self.maker = self.build_dataloaders(self.ws)
        if self.resume:
            self.load_checkpoint(latest)
        elif self.init_checkpoint is not None:
            self._init_weights_from(self.init_checkpoint)
        if self.dist.enabled:
            self.model = D.wrap_ddp(self.model, self.dist, self.device)
        if _on(t.compile, self.device):
            self.model = torch.compile(self.model)

    def _claim_run(self, latest: Path) -> None:
        """Rank 0: lock the run, check it may start, register it."""
        # one process trains into a run at a time (a second one mixed their files)
        self.run_lock = RunLock(self.run_dir, self.run, f"ictview-train {self.kind}").acquire()
        if not self.resume and latest.exists():
            raise IctviewError(
                f"{self.run_dir}: run '{self.run}' already has checkpoints: "
                "use --resume or another --run name"
            )
        if self.resume and not latest.exists():
            raise IctviewError(f"{latest}: nothing to resume")
        self.ws.create_run(self.run, self.kind, self.cfg.to_dict(), self.parent)
        save_config(self.cfg, self.run_dir / "config.toml",
                    f"ictview-train {self.kind} run '{self.run}' (from {self.cfg.source})")

    def fit(self) -> FitResult:
        try:
            self.setup()
        except BaseException:
            self._release_run_lock()
            raise
        try:
            with self._signals():
                return self._loop()
        except NonFiniteLoss as e:
            if self.dist.is_main:
                self.log.event("error", step=self.step, message=str(e))
                self.ws.set_run_status(self.run, "failed")
            raise
        finally:
            self.log.close()
            if hasattr(self, "ws"):
                self.ws.close()
            self._release_run_lock()

    def _release_run_lock(self) -> None:
        lock = getattr(self, "run_lock", None)
        if lock is not None:
            lock.release()

    def _loop(self) -> FitResult:
        t = self.cfg.train
        total = self.cfg.total_steps()
        start = self.step
        if self.dist.is_main:
            self.ws.set_run_status(self.run, "running")
            self.log.event(
                "start", step=start, total_steps=total, epochs=t.epochs, kind=self.kind,
                device=str(self.device), world=self.dist.world, amp="bf16" if self.amp else "off",
                channels_last=self.channels_last, parameters=count_parameters(unwrap(self.model)),
                sources=self.sources_summary, parent=self.parent, resumed=self.resume,
                loader_workers=auto_workers(t.loader_workers, self.device.type == "cuda"),
            )
        workers = auto_workers(t.loader_workers, self.device.type == "cuda")
        feed = open_feed(self.maker, range(start, total), workers, self.device)
        sums: dict[str, torch.Tensor] = {}
        window_steps, window_t0 = 0, time.perf_counter()
        last_good = start
        saved = False
        try:
            for step in range(start, total):
                groups = feed.next(step)
                terms = self.train_step(groups)
                self.step = step + 1
                for k, v in terms.items():
                    sums[k] = sums[k] + v if k in sums else v.clone()
                window_steps += 1
                epoch_end = self.step % t.steps_per_epoch == 0
                ckpt_due = bool(t.checkpoint_every_steps
                                and self.step % t.checkpoint_every_steps == 0)
                log_due = (self.step % max(1, t.log_every_steps) == 0 or epoch_end or ckpt_due
                           or self.step == total)
                if self.dist.enabled:
                    # ranks must stop on the same step: agree at log steps (one tiny
                    # all-reduce there, not a sync every step)
                    stop = log_due and D.any_rank(self._stop.is_set(), self.dist, self.device)
                else:
                    stop = self._stop.is_set()
                    log_due = log_due or stop
                if log_due:
                    avg = {k: float(D.mean_over_ranks(v / window_steps, self.dist))
                           for k, v in sums.items()}
                    if not all(math.isfinite(v) for v in avg.values()):
                        raise NonFiniteLoss(
                            f"{self.run}: loss became {avg['loss']} between steps {last_good} "
                            f"and {self.step}; stopped, last good checkpoint kept in "
                            f"{self.ckpt_dir}"
                        )
                    last_good = self.step
                    dt = time.perf_counter() - window_t0
                    rate = window_steps * t.batch_size / dt if dt > 0 else math.nan
                    eta = (total - self.step) * dt / window_steps if window_steps else math.nan
                    lr = self.optimizer.param_groups[0]["lr"]
                    self.log.event("step", step=self.step, epoch=self.step / t.steps_per_epoch,
                                   **avg, lr=lr, patches_per_s=rate, eta_s=eta)
                    self.log.bar(self.step, loss=avg["loss"], lr=lr)
                    sums, window_steps, window_t0 = {}, 0, time.perf_counter()
                saved = False
                if epoch_end:
                    self.on_epoch_end(self.step // t.steps_per_epoch - 1)
                    saved = not t.checkpoint_every_steps
                if ckpt_due:
                    self.save_checkpoint("latest")
                    saved = True
                if epoch_end or ckpt_due:
                    D.barrier(self.dist)
                if stop and self.step < total:
                    if not saved:
                        self.save_checkpoint("latest")
                    if self.dist.is_main:
                        self.ws.set_run_status(self.run, "interrupted")
                        self.log.event("interrupted", step=self.step,
                                       message="stopped on request; continue with --resume")
                    return FitResult("interrupted", self.step, self.run_dir, self.best)
        finally:
            feed.close()
        self.calibrate()
        if not saved or self.calibration is not None:
            self.save_checkpoint("latest")
        self.save_checkpoint("final")
        if self.dist.is_main:
            self.ws.set_run_status(self.run, "finished")
            self.log.event("done", step=self.step, best=self.best,
                           final=str(self.ckpt_dir / "final.pt"))
        D.barrier(self.dist)
        return FitResult("finished", self.step, self.run_dir, self.best)


class StudentTrainer(Trainer):
    """Semi-supervised student: labeled + ranker pseudo-labels, mixed 0.6 : 0.4 per batch,
    initialised from the teacher (``student.init = "teacher"``)."""

    kind = "student"
    ranker = True

    def build_sources(self, ws, cache):
        if not self.pseudolabel_run:
            raise IctviewError(f"{self.kind} '{self.run}': a pseudolabel run is required")
        mix = self.cfg.data.mix_labeled
        return ([labeled_source(ws, cache, self.cfg),
                 pseudo_source(ws, cache, self.cfg, self.pseudolabel_run, ranker=self.ranker)],
                [mix, 1.0 - mix])


class NoRankerTrainer(StudentTrainer):
    """Ablation: K thresholds on every pseudo-labeled image, no top-C% ranking."""

    kind = "no-ranker"
    ranker = False


class ImageOracleTrainer(StudentTrainer):
    """Image-slice oracle: pixel loss on labeled data only; on the unlabeled set the whole
    slice is the patch and the reference image label its patch label."""

    kind = "image-oracle"

    def build_sources(self, ws, cache):
        mix = self.cfg.data.mix_labeled
        return ([labeled_source(ws, cache, self.cfg), image_oracle_source(ws, cache, self.cfg)],
                [mix, 1.0 - mix])


class PixelOracleTrainer(StudentTrainer):
    """Pixel oracle: reference image labels + pseudo pixel labels, negatives zeroed."""

    kind = "pixel-oracle"

    def build_sources(self, ws, cache):
        if not self.pseudolabel_run:
            raise IctviewError(f"{self.kind} '{self.run}': a pseudolabel run is required")
        mix = self.cfg.data.mix_labeled
        return ([labeled_source(ws, cache, self.cfg),
                 pixel_oracle_source(ws, cache, self.cfg, self.pseudolabel_run)],
                [mix, 1.0 - mix])


TRAINERS: dict[str, type[Trainer]] = {
    "teacher": Trainer,
    "student": StudentTrainer,
    "no-ranker": NoRankerTrainer,
    "image-oracle": ImageOracleTrainer,
    "pixel-oracle": PixelOracleTrainer,
}
