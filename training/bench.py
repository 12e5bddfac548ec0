"""``ictview-train bench``: training patches/s and inference slices/s, reference vs tuned.

Measured in one process, same device, same network:

- reference configuration: fp32, NCHW, eager, batch 16 (the paper's batch);
- tuned configuration: on CUDA bf16 autocast + channels_last + torch.compile (the project's
  training defaults); on a CPU the candidates fp32 channels_last and bf16 autocast are measured
  too and the fastest is reported as "tuned" (torch.compile is left out on CPU: minutes of
  compilation for a benchmark of seconds), with the choice printed;
- compute only: training steps (forward, backward, SGD) on crop-sized random batches, and
  inference forward passes on whole slices;
- end to end: the same training steps fed by the real pipeline from a workspace (exam cache,
  brain extraction, slice sampling, augmentation planning in the prefetch thread, windows and
  augmentation rendering on the device), and the predictor over exams as pseudo-labeling runs
  it (HDF5 read, brain extraction, forward, prediction file written).

Sizes: on CUDA (or with ``--full``) the paper's DRN-D-38 at 240 x 240 (training) and 512 x 512
(inference). On a CPU without ``--full``: the same network at width 1/4, 96 x 96 and 256 x 256,
so the whole benchmark takes a minute or two; the printout says which.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from training.distributed import resolve_device
from training.progress import load_average
from training.losses import patchfcn_loss
from training.models import (
    DRN_D_38_BLOCKS,
    PatchFCN,
    PatchFCNConfig,
    count_flops,
    count_parameters,
)


@dataclass
class Variant:
    name: str
    amp: bool = False
    channels_last: bool = False
    compile: bool = False

    def describe(self) -> str:
        parts = ["bf16" if self.amp else "fp32", "channels_last" if self.channels_last else "NCHW",
                 "compiled" if self.compile else "eager"]
        return ", ".join(parts)


REFERENCE = Variant("reference")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, amp: bool):
    if not amp:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def _timed(fn, device: torch.device, seconds: float, warmup: int = 2, min_iters: int = 3) -> float:
    """Seconds per call (median-free: total over a window of at least ``seconds``)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    n, t0 = 0, time.perf_counter()
    while n < min_iters or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
        if n % 4 == 0:
            _sync(device)
    _sync(device)
    return (time.perf_counter() - t0) / n


def _model(width: float, device: torch.device, v: Variant) -> torch.nn.Module:
    torch.manual_seed(0)
    m = PatchFCN(PatchFCNConfig(width=width, blocks=DRN_D_38_BLOCKS)).to(device)
    if v.channels_last:
        m = m.to(memory_format=torch.channels_last)
    return m


def train_rate(width: float, size: int, batch: int, device: torch.device, v: Variant,
               seconds: float) -> float:
    """Compute-only training patches/s."""
    model = _model(width, device, v)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    step_model = torch.compile(model) if v.compile else model
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=g).to(device)
    y = (torch.rand(batch, size, size, generator=g) > 0.97).to(torch.uint8).to(device)
    if v.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def step():
        opt.zero_grad(set_to_none=True)
        with _autocast(device, v.amp):
            out = step_model(x)
            loss = patchfcn_loss(out.seg_logits, out.cls_logits, y).total
        loss.backward()
        opt.step()

    return batch / _timed(step, device, seconds)


def infer_rate(width: float, size: int, batch: int, device: torch.device, v: Variant,
               seconds: float) -> float:
    """Compute-only inference slices/s (segmentation probabilities + patch head)."""
    model = _model(width, device, v).eval()
    fwd = torch.compile(model) if v.compile else model
    x = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(1)).to(device)
    if v.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def run():
        with _autocast(device, v.amp):
            out = fwd(x)
        return 1.0 - torch.softmax(out.seg_logits.float(), 1)[:, 0]

    return batch / _timed(run, device, seconds)


def _bench_workspace(path: Path | None) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    if path is not None:
        return path, None
    from ictview.io.synthetic_import import import_synthetic
    from ictview.store.workspace import Workspace
    from ictview.synth import generate

    tmp = tempfile.TemporaryDirectory(prefix="ictview-bench-")
    root = Path(tmp.name)
    generate("tiny", root / "synth", seed=0)
    with Workspace.create(root / "ws") as ws:
        import_synthetic(ws, root / "synth")
    return root / "ws", tmp


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of other processes (from /proc; 0 where unreadable)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            continue
    return total / tick


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def end_to_end(ws_root: Path, width: float, crop: int, batch: int, device: torch.device,
               v: Variant, burst: float, loader_workers: tuple[int, ...] = (0,),
               rounds: int = 8) -> dict:
    """Training patches/s fed by the real pipeline, for each number of loader processes,
    against the same steps on batches already in memory (compute only), interleaved; then
    pseudo-labeling slices/s as ``ictview-train pseudolabel`` runs it.

    Compute only and each end-to-end setting take turns for ``rounds`` rounds of ``burst``
    seconds each, and the ratio is the median of each round's end-to-end / compute-only
    ratio: on a machine shared with other work the rates drift by several times within a
    minute, and turns a second or two apart see about the same load. Before each
    end-to-end turn the batches its loader made ahead (during the other turns) are taken
    untimed, so a turn pays for every batch it trains on. The compute-only batches are
    real rendered batches (8 of them, cycled), so data-dependent arithmetic costs (denormal
    floats, say) are the same on both sides."""
    from ictview.store import arrays
    from ictview.store.workspace import Workspace
    from training.config import Config, InferenceSection, ModelSection
    from training.data.batches import BatchMaker, open_feed
    from training.data.exam_cache import ExamCache
    from training.data.exam_loader import auto_workers, iter_masked
    from training.data.sources import labeled_source
    from training.inference import Predictor
    from training.windows import DEFAULT_WINDOWS

    cfg = Config(model=replace(ModelSection(), width=width))
    cfg.augment = replace(cfg.augment, crop=crop)
    out: dict = {}
    with Workspace.open(ws_root) as ws:
        cache = ExamCache(ws, cfg.preprocess)
        src = labeled_source(ws, cache, cfg)
        maker = BatchMaker([src], [1.0], batch, 0, DEFAULT_WINDOWS)
        model = _model(width, device, v)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        step_model = torch.compile(model) if v.compile else model

        def train_on(groups):
            opt.zero_grad(set_to_none=True)
            with _autocast(device, v.amp):
                loss = 0.0
                for g in groups:
                    x = g.images.contiguous(memory_format=torch.channels_last) \
                        if v.channels_last else g.images
                    o = step_model(x)
                    loss = loss + patchfcn_loss(o.seg_logits, o.cls_logits, g.labels,
                                                g.cls_target).total
            loss.backward()
            opt.step()

        held = [maker.render(maker.raw(10**7 + k), device) for k in range(8)]
        out["batch_making"] = batch_making(maker, device, rounds)
        modes: dict = {"compute": None}
        feeds = {}
        try:
            for n in loader_workers:
                feeds[n] = open_feed(maker, range(10**6), n, device)
                modes[n] = feeds[n]
            counters = {k: 0 for k in modes}

            waited = {k: 0.0 for k in modes}

            def run(k, n):
                for _ in range(n):
                    i = counters[k]
                    counters[k] += 1
                    t = time.perf_counter()
                    groups = held[i % len(held)] if k == "compute" else modes[k].next(i)
                    waited[k] += time.perf_counter() - t
                    train_on(groups)

            def drain(k):  # batches made during the other turns would come for free
                if k != "compute":
                    for _ in range(modes[k].ahead):
                        modes[k].next(counters[k])
                        counters[k] += 1

            for k in modes:  # warm-up: loader processes start and fill their queues
                run(k, 2)
            rates: dict = {k: [] for k in modes}
            spent = {k: 0.0 for k in modes}
            waited = {k: 0.0 for k in modes}
            cpu = {k: 0.0 for k in modes}  # CPU seconds: this process + the mode's loaders
            steps_done = {k: 0 for k in modes}
            for _ in range(rounds):
                for k in modes:
                    drain(k)
                    _sync(device)
                    pids = [] if k == "compute" else modes[k].pids()
                    c0 = time.process_time() + _cpu_seconds(pids)
                    n, t0 = 0, time.perf_counter()
                    while n < 2 or time.perf_counter() - t0 < burst:
                        run(k, 1)
                        n += 1
                    _sync(device)
                    spent[k] += time.perf_counter() - t0
                    cpu[k] += time.process_time() + _cpu_seconds(pids) - c0
                    steps_done[k] += n
                    rates[k].append(n * batch / (time.perf_counter() - t0))
        finally:
            for f in feeds.values():
                f.close()
        compute = rates["compute"]
        per = {}
        for n in loader_workers:
            ratios = [e / c for e, c in zip(rates[n], compute)]
            # the training process's time spent getting batches (reading, rendering,
            # or waiting for a loader process): the loader's share of a step
            # CPU seconds per step, compute only / end to end (loader processes included):
            # what the ratio would be on a quiet machine whose cores the training keeps
            # busy, and much less sensitive to other work than the wall-clock rates
            cpu_ratio = (cpu["compute"] / steps_done["compute"]) / (cpu[n] / steps_done[n])
            # best round over best round (timeit's rule for a noisy machine: the fastest
            # turn is the one least disturbed by other work)
            best_ratio = max(rates[n]) / max(compute)
            per[n] = {"patches_per_s": _median(rates[n]), "ratio": _median(ratios),
                      "ratios": ratios, "batch_wait_fraction": waited[n] / spent[n],
                      "cpu_ratio": cpu_ratio, "best_patches_per_s": max(rates[n]),
                      "best_ratio": best_ratio}
        best = max(loader_workers, key=lambda n: per[n]["ratio"])
        out["train_compute_only_patches_per_s"] = _median(compute)
        out["train_compute_only_best_patches_per_s"] = max(compute)
        out["train_by_loader_workers"] = {str(n): r for n, r in per.items()}
        out["train_loader_workers"] = best
        out["train_patches_per_s"] = per[best]["patches_per_s"]
        out["train_ratio_end_to_end_over_compute"] = per[best]["ratio"]
        out["rounds"] = rounds
        out["train_slice_size"] = list(src.hu[0].shape[1:])

        predictor = Predictor(model.eval(), DEFAULT_WINDOWS, cfg.preprocess,
                              InferenceSection(batch_size=batch), crop, device,
                              amp=v.amp, channels_last=v.channels_last)
        exams = [e.name for e in ws.exams()]
        workers = auto_workers(-1, device.type == "cuda")
        tmpdir = Path(tempfile.mkdtemp(prefix="ictview-bench-pred-"))
        try:
            predictor.predict_exam(ws, exams[0])  # warm-up
            _sync(device)
            n, i, t0 = 0, 0, time.perf_counter()
            # as pseudo-labeling runs: loader processes read + extract ahead of the model
            for name, masked, mask in iter_masked(ws_root, exams, cfg.preprocess, workers):
                pred = predictor.predict_masked(masked, mask)
                arrays.write_prediction(tmpdir / f"{name}.h5", pred)
                n += pred.prob.shape[0]
                i += 1
                if time.perf_counter() - t0 > 2 * burst and i >= 2:
                    break
            _sync(device)
            out["pseudolabel_slices_per_s"] = n / (time.perf_counter() - t0)
            out["pseudolabel_exams"] = i
            out["loader_workers"] = workers
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
    return out


def batch_making(maker, device: torch.device, rounds: int, per_round: int = 8) -> dict:
    """Milliseconds (wall and CPU of this process) to plan, read and render one batch: the
    batch maker against the per-sample reference it replaced (training/data/
    reference_batches.py, equal batches bit for bit), in interleaved rounds on the same
    steps, medians of the rounds. The slices are in the cache already (the warm-up batches
    read them), so this is the work of every batch, not the disk's."""
    from training.data.reference_batches import reference_batch

    def batched(step):
        maker.render(maker.raw(step), device)

    def reference(step):
        reference_batch(maker, step)

    wall: dict = {"batched": [], "reference": []}
    cpu: dict = {"batched": [], "reference": []}
    for r in range(rounds):
        steps = range(2 * 10**7 + r * per_round, 2 * 10**7 + (r + 1) * per_round)
        for name, fn in (("batched", batched), ("reference", reference)):
            _sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            for s in steps:
                fn(s)
            _sync(device)
            wall[name].append((time.perf_counter() - t0) / per_round * 1e3)
            cpu[name].append((time.process_time() - c0) / per_round * 1e3)
    return {"wall_ms": {k: _median(v) for k, v in wall.items()},
            "cpu_ms": {k: _median(v) for k, v in cpu.items()}}


def run_bench(device_pref: str = "auto", full: bool = False, seconds: float | None = None,
              workspace: Path | None = None, log=print, sizes: tuple | None = None,
              loader_workers: tuple[int, ...] | None = None, rounds: int = 8) -> dict:
    """``sizes`` = (width, train size, inference size, batch) overrides the defaults (tests).
    ``loader_workers``: the numbers of loader processes measured end to end (default 0, 1
    and 2 on a CPU; 0 and the CUDA default on CUDA)."""
    device = resolve_device(device_pref)
    on_cuda = device.type == "cuda"
    full = full or on_cuda
    width, train_size, infer_size = (1.0, 240, 512) if full else (0.25, 96, 256)
    batch = 16
    if sizes is not None:
        width, train_size, infer_size, batch = sizes
    seconds = seconds if seconds is not None else (10.0 if on_cuda else 3.0)
    if on_cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    net = PatchFCN(PatchFCNConfig(width=width))
    params = count_parameters(net)
    # forward FLOPs per image (conv + linear, 2 x MACs); a training step is ~3x forward
    fwd_train = count_flops(net, train_size, train_size).flops
    fwd_infer = count_flops(net, infer_size, infer_size).flops
    info = {
        "device": (torch.cuda.get_device_name(device) if on_cuda
                   else f"cpu ({torch.get_num_threads()} threads)"),
        "torch": torch.__version__, "width": width, "parameters": params,
        "train_size": train_size, "infer_size": infer_size, "batch": batch, "seconds": seconds,
        "gflop_forward_train_patch": fwd_train / 1e9, "gflop_forward_infer_slice": fwd_infer / 1e9,
    }
    log(f"ictview-train bench on {info['device']}, torch {torch.__version__}: PatchFCN DRN-D-38 "
        f"width {width} ({params / 1e6:.2f}M parameters), batch {batch}, training "
        f"{train_size}x{train_size} ({fwd_train / 1e9:.2f} GFLOP forward), inference "
        f"{infer_size}x{infer_size} ({fwd_infer / 1e9:.2f} GFLOP)"
        + ("" if full else " (CPU: width-reduced and small sizes; --full for the real ones)"))
    results: dict = {"info": info, "variants": {}}

    def measure(v: Variant) -> dict:
        r = {"config": v.describe(),
             "train_patches_per_s": train_rate(width, train_size, batch, device, v, seconds),
             "infer_slices_per_s": infer_rate(width, infer_size, batch, device, v, seconds)}
        r["train_tflop_per_s"] = 3 * fwd_train * r["train_patches_per_s"] / 1e12
        r["infer_tflop_per_s"] = fwd_infer * r["infer_slices_per_s"] / 1e12
        log(f"  {v.name:11s} {v.describe():30s} train {r['train_patches_per_s']:9.1f} patches/s"
            f" ({r['train_tflop_per_s']:.3f} TFLOP/s)   inference {r['infer_slices_per_s']:9.1f}"
            f" slices/s ({r['infer_tflop_per_s']:.3f} TFLOP/s)")
        return r

    ref = measure(REFERENCE)
    results["variants"]["reference"] = ref
    if on_cuda:
        tuned_v = Variant("tuned", amp=True, channels_last=True, compile=True)
        tuned = measure(tuned_v)
        choice = "bf16 + channels_last + torch.compile (the CUDA defaults)"
    else:
        cands = [Variant("cand-cl", channels_last=True), Variant("cand-bf16", amp=True),
                 Variant("cand-bf16cl", amp=True, channels_last=True)]
        scored = [(REFERENCE, ref)] + [(c, measure(c)) for c in cands]
        results["variants"].update({c.name: r for c, r in scored[1:]})

        def score(r):  # geometric mean of the two rates
            return math.sqrt(r["train_patches_per_s"] * r["infer_slices_per_s"])

        tuned_v, tuned = max(scored, key=lambda cr: score(cr[1]))
        tuned_v = replace(tuned_v, name="tuned")
        choice = (f"{tuned_v.describe()} (fastest here of fp32/bf16 x NCHW/channels_last; "
                  "compile not tried on CPU)")
    results["variants"]["tuned"] = tuned
    results["tuned_choice"] = choice
    ratio = {k: tuned[k] / ref[k] for k in ("train_patches_per_s", "infer_slices_per_s")}
    results["ratio_tuned_over_reference"] = ratio
    log(f"  tuned = {choice}")
    log(f"  ratio tuned / reference: training x{ratio['train_patches_per_s']:.2f}, "
        f"inference x{ratio['infer_slices_per_s']:.2f}")

    if loader_workers is None:
        from training.data.exam_loader import auto_workers

        loader_workers = (0, auto_workers(-1, True)) if on_cuda else (0, 1, 2)
    loader_workers = tuple(dict.fromkeys(loader_workers))
    ws, tmp = _bench_workspace(workspace)
    try:
        e2e = end_to_end(ws, width, train_size, batch, device, tuned_v, seconds / 2,
                         loader_workers, rounds)
    finally:
        if tmp is not None:
            tmp.cleanup()
    results["end_to_end"] = e2e
    load = load_average()
    results["load_average"] = load
    where = "given workspace" if workspace else "synthetic tiny workspace"
    log(f"  end to end ({where}, slices {e2e['train_slice_size'][0]}x"
        f"{e2e['train_slice_size'][1]}, tuned, {rounds} interleaved rounds of {seconds / 2:g} s, "
        f"medians; load average {load}):")
    bm = e2e["batch_making"]
    log(f"    making one batch (plan, read cached slices, render; this process): "
        f"{bm['wall_ms']['batched']:.2f} ms ({bm['cpu_ms']['batched']:.2f} ms CPU) vs "
        f"{bm['wall_ms']['reference']:.2f} ms ({bm['cpu_ms']['reference']:.2f} ms CPU) for "
        f"the per-sample reference, "
        f"x{bm['wall_ms']['reference'] / bm['wall_ms']['batched']:.2f}")
    log(f"    training, compute only (rendered batches held in memory): "
        f"{e2e['train_compute_only_patches_per_s']:.1f} patches/s (best round "
        f"{e2e['train_compute_only_best_patches_per_s']:.1f})")
    for n, r in e2e["train_by_loader_workers"].items():
        log(f"    training from the workspace, {n} loader processes: "
            f"{r['patches_per_s']:.1f} patches/s = {100 * r['ratio']:.1f} % of compute only "
            f"(rounds: {', '.join(f'{100 * x:.0f} %' for x in r['ratios'])}); best round "
            f"{r['best_patches_per_s']:.1f} = {100 * r['best_ratio']:.1f} % of compute only's "
            f"best; CPU-time ratio "
            f"{100 * r['cpu_ratio']:.1f} % (compute only's CPU seconds per step over this "
            f"one's, loader processes included); {100 * r['batch_wait_fraction']:.1f} % of "
            f"the training process's time getting batches")
    best = e2e["train_loader_workers"]
    b = e2e["train_by_loader_workers"][str(best)]
    log(f"    best: {best} loader processes, {100 * e2e['train_ratio_end_to_end_over_compute']:.1f}"
        f" % of compute only (median of rounds), {100 * b['best_ratio']:.1f} % best round over "
        f"best round, CPU-time ratio {100 * b['cpu_ratio']:.1f} % (goal >= 95 %)")
    log(f"    pseudo-labeling {e2e['pseudolabel_slices_per_s']:.1f} slices/s "
        f"({e2e['pseudolabel_exams']} exams, {e2e['loader_workers']} loader processes)")
    return results


def main_bench(args) -> int:
    from ictview.errors import IctviewError

    if args.rounds < 1:
        raise IctviewError(f"--rounds must be >= 1, got {args.rounds}")
    if args.loader_workers and min(args.loader_workers) < 0:
        raise IctviewError(f"--loader-workers must be >= 0, got {args.loader_workers}")
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet = args.json
    res = run_bench(args.device, args.full, args.seconds, args.workspace,
                    log=(lambda *_: None) if quiet else print,
                    loader_workers=tuple(args.loader_workers) if args.loader_workers else None,
                    rounds=args.rounds)
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0
