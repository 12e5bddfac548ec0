"""``ictview-train bench scale``: does memory stay flat as the workspace grows?

For each N of ``--exams N1 N2 ...`` the bench takes a workspace of N small exams (128 x 128 x 8,
the cpu-study size: a tenth labeled with reference pixel labels, the rest unlabeled) and runs,
each in a fresh ``ictview-train`` process with the given config (default cpu-study):

- a teacher epoch (``--steps`` steps), a pseudo-label pass over the unlabeled role and a
  student epoch (labeled + ranker pseudo-labels);
- peak RSS of each: ``ru_maxrss`` of that process from ``os.wait4`` (the process and the
  descendants it waited for: the largest one), and the sum over its process tree sampled from
  /proc every 0.1 s (loader processes included);
- the rates the process itself logged (time per slice, without start-up) and its wall time;
- bytes on disk per slice: volumes, reference labels, the pass's predictions as the config
  stores them (cpu-study: exact float16 maps), the same predictions as compact pseudo-label
  targets (inference.pseudo_store = "targets", the paper config's; written by the store's
  code from a sample of the float16 files), and any other file the pass or the student
  stored outside the run folders.

Then the ratio of peak RSS at the largest N to the smallest, and the extrapolation to the
paper's corpus (750,000 slices of 512 x 512): disk by bytes per voxel, and H100 hours from the
GPU rates measured in DESIGN.md with the data path's CPU cost measured here.

Workspaces: exams are written directly through the store API (``Workspace.add_exam``, the
importer's own commit), copied from the ``tiny`` synthetic study (generated and imported once)
with fresh UIDs and fresh noise, which is much faster than writing and importing N DICOM series
and keeps the stored data's compressibility that of the synthetic scans. They are kept in the
cache folder, keyed by N and by the store code (a changed store format builds new ones), and
written to a temporary folder renamed when complete. Each measurement runs in a working copy
(hard links to the cached files, its own catalog copy) that is deleted afterwards, so the
cache stays as built and the bench can be re-run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ictview.errors import IctviewError
from training.progress import load_average

# DESIGN.md, "Facts measured here (2026-11)": DRN-D-38 PatchFCN on one H100, bf16
# channels_last compiled: training 2,192 patches/s (240 x 240), inference 1,660 slices/s
# (512 x 512)
H100_TRAIN_PATCHES_PER_S = 2192.0
H100_INFER_SLICES_PER_S = 1660.0
PAPER_SLICES = 750_000
PAPER_SIDE = 512
PAPER_PATCHES = 600 * 240 * 16  # the paper's schedule: 600 epochs x 240 steps x batch 16
SIDE, SLICES = 128, 8  # the exams written here (the tiny / cpu-study size)
WS_FORMAT = 1  # bump when the way workspaces are built here changes
PHASES = ("teacher", "pseudolabel", "student")
REPO = Path(__file__).resolve().parents[1]


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ictview" / "bench-scale"


def _store_key() -> str:
    """Changes when the store code does (a cached workspace in an old format is not reused)."""
    from ictview.store import arrays, workspace

    h = hashlib.sha1(f"{WS_FORMAT}".encode())
    for mod in (arrays, workspace):
        h.update(Path(mod.__file__).read_bytes())
    return h.hexdigest()[:10]


# ---- building the workspaces -------------------------------------------------------------


def seed_workspace(cache: Path) -> Path:
    """The tiny synthetic study, imported (built once into the cache)."""
    from ictview.io.synthetic_import import import_synthetic
    from ictview.store.workspace import Workspace
    from ictview.synth import generate

    final = cache / f"seed-{_store_key()}"
    if (final / ".complete").is_file():
        return final
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="seed-tmp-", dir=cache))
    try:
        generate("tiny", tmp / "synth", seed=0)
        with Workspace.create(tmp / "ws") as ws:
            import_synthetic(ws, tmp / "synth")
        (tmp / "ws" / ".complete").write_text("")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp / "ws", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def labeled_count(n: int) -> int:
    return min(n - 1, max(2, n // 10))


def build_workspace(cache: Path, n: int, seed_ws: Path, log=print) -> Path:
    """N exams: labeled_count(n) labeled (with reference labels), the rest unlabeled."""
    from ictview.store.workspace import NewExam, Workspace

    if n < 3:
        raise IctviewError(f"bench scale: --exams must be >= 3, got {n}")
    final = cache / f"ws-{n}-{_store_key()}"
    if (final / ".complete").is_file():
        return final
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"ws-{n}-tmp-", dir=cache))
    try:
        with Workspace.open(seed_ws) as seed:
            pools = {role: [e.name for e in seed.exams(role=role)]
                     for role in ("labeled", "unlabeled")}
            vols = {name: seed.read_volume(name) for names in pools.values() for name in names}
            labs = {name: seed.load_labels("reference", name) for name in pools["labeled"]}
        pools["labeled"] = [n_ for n_ in pools["labeled"] if labs[n_] is not None]
        if not pools["labeled"] or not pools["unlabeled"]:
            raise IctviewError(f"{seed_ws}: the seed workspace needs labeled exams with "
                               "reference labels and unlabeled exams")
        n_lab = labeled_count(n)
        rng = np.random.default_rng(n)
        with Workspace.create(tmp / "ws") as ws:
            ws.ensure_site("scale-labeled", "labeled")
            ws.ensure_site("scale-unlabeled", "unlabeled")
            for i in range(n):
                role = "labeled" if i < n_lab else "unlabeled"
                pool = pools[role]
                src = pool[i % len(pool)]
                v = vols[src]
                hu = v.hu.copy()
                body = hu > -900  # fresh noise inside the head; air stays air, as in a scan
                hu[body] += rng.integers(-4, 5, size=int(body.sum()), dtype=np.int16)
                uid = f"2.25.{1000 + n}.{i}"
                z = hu.shape[0]
                ws.add_exam(NewExam(
                    name=f"scale-{i:06d}", site=f"scale-{role}", hu=hu, geometry=v.geometry,
                    sop_uids=[f"{uid}.3.{k}" for k in range(z)],
                    positions=[float(k) for k in range(z)], patient_id=f"P{i:06d}",
                    study_uid=f"{uid}.1", series_uid=f"{uid}.2",
                    masks={"reference": labs[src]} if role == "labeled" else None,
                    source="bench scale",
                ))
                if log and (i + 1) % 500 == 0:
                    log(f"    {i + 1} / {n} exams written")
        (tmp / "ws" / ".complete").write_text("")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp / "ws", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if log:
        log(f"  built {final} ({n} exams) in {time.perf_counter() - t0:.0f} s")
    return final


def working_copy(src: Path, dst: Path) -> Path:
    """Hard links to the cached files, a copy of the catalog: runs write only into ``dst``
    (stored files are replaced by rename, never written in place, so links are safe)."""
    for dirpath, _dirs, files in os.walk(src):
        rel = Path(dirpath).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        for f in files:
            s, d = Path(dirpath) / f, dst / rel / f
            if f.startswith("workspace.sqlite") or f.endswith((".lock", ".journal")):
                shutil.copy2(s, d)
            else:
                try:
                    os.link(s, d)
                except OSError:  # another filesystem: copy
                    shutil.copy2(s, d)
    return dst


# ---- measuring one phase -------------------------------------------------------------------


def _tree_rss(root_pid: int) -> int:
    """Bytes resident in ``root_pid`` and its descendants (from /proc)."""
    parent, rss = {}, {}
    page = os.sysconf("SC_PAGE_SIZE")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(d)] = int(fields[1])  # after "pid (comm)": state, ppid, ...
        rss[int(d)] = int(fields[21]) * page  # rss in pages (field 24 of stat)
    total, todo = 0, [root_pid]
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return total


@dataclass
class Measured:
    seconds: float
    max_rss: int  # bytes: the largest process (ru_maxrss via wait4)
    tree_rss: int  # bytes: peak of the process tree's sum (sampled)


def measure(cmd: list[str], env: dict) -> Measured:
    """Run ``cmd``; its own peak RSS (wait4), not that of any earlier child of this process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.wait(0.1):
            try:
                peak[0] = max(peak[0], _tree_rss(proc.pid))
            except OSError:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    sampler.join()
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"]
        raise IctviewError(f"bench scale: '{' '.join(cmd[3:6])}' failed "
                           f"(exit {proc.returncode}): {last[0]}")
    rss = usage.ru_maxrss * 1024
    # the sampler may miss a short peak; the tree holds at least its largest process's peak
    return Measured(time.perf_counter() - t0, rss, max(peak[0], rss))


def _rate(ws: Path, run: str, phase: str) -> float | None:
    """Slices per second as the process logged it (start-up excluded)."""
    from training.progress import read_progress

    events = read_progress(ws / "runs" / run / "progress.jsonl")
    if phase == "pseudolabel":
        done = [e for e in events if e.get("event") == "done"]
        return done[-1].get("slices_per_s_this_rank") if done else None
    rates = [e["patches_per_s"] for e in events
             if e.get("event") == "step" and e.get("patches_per_s")]
    return float(np.median(rates)) if rates else None


def _sizes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            try:
                out[str(p.relative_to(root))] = p.stat().st_size
            except OSError:
                pass
    return out


def measure_n(ws_cached: Path, n: int, config: str, steps: int, loader_workers: int | None,
              scratch: Path) -> dict:
    """Teacher epoch, pseudo-label pass and student epoch on a working copy of the workspace."""
    from ictview.store.workspace import Workspace

    ws = working_copy(ws_cached, scratch / f"ws-{n}")
    try:
        with Workspace.open(ws) as w:
            slices = {role: sum(e.n_slices for e in w.exams(role=role))
                      for role in ("labeled", "unlabeled")}
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        env.pop("WORLD_SIZE", None)
        base = [sys.executable, "-m", "training.cli"]
        common = ["-w", str(ws), "-c", config, "--quiet"]
        if loader_workers is not None:
            common += ["--loader-workers", str(loader_workers)]
        epoch = ["--set", "train.epochs=1", "--set", f"train.steps_per_epoch={steps}",
                 "--set", "train.val_every_epochs=0", "--set", "inference.calibration=off",
                 "--set", f"train.log_every_steps={max(1, steps // 4)}"]
        cmds = {
            "teacher": base + ["teacher", *common, "--run", "scale-teacher", *epoch],
            "pseudolabel": base + ["pseudolabel", *common, "--teacher", "scale-teacher",
                                   "--run", "scale-pl"],
            "student": base + ["student", *common, "--teacher", "scale-teacher",
                               "--pseudolabels", "scale-pl", "--run", "scale-ss", *epoch],
        }
        runs = {"teacher": "scale-teacher", "pseudolabel": "scale-pl", "student": "scale-ss"}
        out: dict = {"exams": n, "slices": slices, "phases": {}}
        before = _sizes(ws)
        for phase in PHASES:
            m = measure(cmds[phase], env)
            rate = _rate(ws, runs[phase], phase)
            out["phases"][phase] = {
                "seconds": round(m.seconds, 2), "peak_rss_bytes": m.max_rss,
                "peak_rss_tree_bytes": m.tree_rss, "slices_per_s": rate,
                "seconds_per_slice": (1.0 / rate) if rate else None,
            }
        after = _sizes(ws)
        out["bytes_per_slice"] = _disk(before, after, slices)
        out["bytes_per_slice"]["pseudo_labels_compact"] = _compact_bytes_per_slice(
            ws, "scale-pl", config, scratch)
        return out
    finally:
        shutil.rmtree(ws, ignore_errors=True)


def _disk(before: dict[str, int], after: dict[str, int], slices: dict[str, int]) -> dict:
    total = slices["labeled"] + slices["unlabeled"]
    vol = sum(s for p, s in before.items() if p.startswith("volumes" + os.sep))
    lab = sum(s for p, s in before.items()
              if p.startswith(os.path.join("labels", "reference") + os.sep))
    pred_dir = os.path.join("predictions", "scale-pl") + os.sep
    pred = sum(s for p, s in after.items() if p.startswith(pred_dir)
               and os.sep not in p[len(pred_dir):] and p.endswith(".h5"))
    # pseudo-labels: whatever else the pseudo-label pass and the student stored (outside the
    # run folders, the per-exam prediction files and the catalog)
    pseudo = sum(s for p, s in after.items()
                 if p not in before and not p.startswith("runs" + os.sep)
                 and not p.startswith("workspace.sqlite")
                 and not (p.startswith(pred_dir) and os.sep not in p[len(pred_dir):]
                          and p.endswith(".h5")))
    return {"volumes": vol / total, "labels": lab / max(1, slices["labeled"]),
            "predictions": pred / max(1, slices["unlabeled"]),
            "other_files": pseudo / max(1, slices["unlabeled"])}


def _compact_bytes_per_slice(ws: Path, run: str, config: str, scratch: Path,
                             sample: int = 200) -> float | None:
    """Bytes per unlabeled slice of the pass's predictions stored as compact pseudo-label
    targets (inference.pseudo_store = "targets", the paper config's choice), written by the
    store's own code from a sample of the float16 files; None where the pass already stored
    targets (then they are the "predictions" figure)."""
    from ictview.store import arrays
    from training.config import load_config

    from ictview.store.workspace import Workspace
    from training.ranker import compact_prediction

    r = load_config(config).ranker
    out = scratch / "compact"
    out.mkdir(exist_ok=True)
    nbytes = slices = 0
    try:
        # the bench's own workspace, read like any other: through the read guard
        with Workspace.open(ws) as w:
            exams = w.predicted_exams(run)
            for exam in exams[:: max(1, len(exams) // sample)][:sample]:
                try:
                    pred = w.read_prediction(run, exam, pixels=True)
                except IctviewError:  # already compact
                    return None
                dst = out / f"{exam}.h5"
                arrays.write_prediction(dst, compact_prediction(pred, r.k_hi, r.k_lo))
                nbytes += dst.stat().st_size
                slices += len(pred.slice_scores)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return nbytes / slices if slices else None


def data_path_seconds_per_voxel(ws: Path, exams: int = 16) -> float:
    """One core's CPU time to read a stored exam and extract the brain, per voxel."""
    from ictview.core.brain_mask import BrainMaskConfig
    from ictview.store.workspace import Workspace
    from training.data.exam_loader import load_masked

    with Workspace.open(ws) as w:
        names = [e.name for e in w.exams()]
    names = names[:: max(1, len(names) // exams)][:exams]  # both roles, as the corpus mixes
    cfg = BrainMaskConfig().__dict__
    # CPU time, not wall time: on a machine shared with other work the wall time says more
    # about the neighbours than about the data path (which is single-threaded)
    voxels, t0 = 0, time.process_time()
    for name in names:
        hu, _ = load_masked(str(ws / "volumes" / f"{name}.h5"), cfg)
        voxels += hu.size
    return (time.process_time() - t0) / voxels


# ---- the whole bench -----------------------------------------------------------------------


def run_scale(exams: list[int], cache: Path | None = None, config: str = "cpu-study",
              steps: int = 20, loader_workers: int | None = None, seed_ws: Path | None = None,
              log=print) -> dict:
    cache = Path(cache) if cache else default_cache()
    cache.mkdir(parents=True, exist_ok=True)
    exams = sorted(dict.fromkeys(exams))
    log(f"ictview-train bench scale: exams {', '.join(map(str, exams))} "
        f"({SIDE}x{SIDE}x{SLICES}), config {config}, {steps} steps per epoch, "
        f"cache {cache}; load average {load_average()}")
    seed = Path(seed_ws) if seed_ws else seed_workspace(cache)
    results: dict = {"config": config, "steps": steps, "cache": str(cache), "by_exams": {}}
    scratch = Path(tempfile.mkdtemp(prefix="scale-run-", dir=cache))
    try:
        for n in exams:
            ws = build_workspace(cache, n, seed, log)
            r = measure_n(ws, n, config, steps, loader_workers, scratch)
            results["by_exams"][str(n)] = r
            _log_n(r, log)
        results["data_path_s_per_voxel"] = data_path_seconds_per_voxel(
            build_workspace(cache, exams[-1], seed, None))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    lo, hi = results["by_exams"][str(exams[0])], results["by_exams"][str(exams[-1])]
    results["rss_ratio_largest_over_smallest"] = {
        p: hi["phases"][p]["peak_rss_tree_bytes"] / lo["phases"][p]["peak_rss_tree_bytes"]
        for p in PHASES}
    results["extrapolation"] = extrapolate(hi, results["data_path_s_per_voxel"])
    results["load_average"] = load_average()
    _log_summary(results, exams, log)
    return results


def extrapolate(r: dict, s_per_voxel: float) -> dict:
    """The paper's corpus from the largest N: disk per voxel, GPU time from DESIGN.md."""
    voxels = PAPER_SLICES * PAPER_SIDE**2
    per_voxel = {k: (v / (SIDE * SIDE) if v is not None else None)
                 for k, v in r["bytes_per_slice"].items()}
    # the corpus as the paper config stores it: volumes + compact pseudo-labels (float16
    # prediction maps only where exact probabilities are kept: evaluation, C / K review)
    disk = {k: (v or 0.0) * voxels for k, v in per_voxel.items() if k != "labels"}
    disk_total = disk["volumes"] + (disk["pseudo_labels_compact"] or disk["predictions"])
    load_s_per_slice = s_per_voxel * PAPER_SIDE**2
    return {
        "slices": PAPER_SLICES, "side": PAPER_SIDE,
        "disk_bytes": disk, "disk_bytes_total": disk_total,
        "h100_pseudolabel_pass_h": PAPER_SLICES / H100_INFER_SLICES_PER_S / 3600,
        "h100_epoch_over_corpus_h": PAPER_SLICES / H100_TRAIN_PATCHES_PER_S / 3600,
        "h100_paper_schedule_h": PAPER_PATCHES / H100_TRAIN_PATCHES_PER_S / 3600,
        "data_path_s_per_512_slice_one_core": load_s_per_slice,
        "loader_processes_to_feed_inference": H100_INFER_SLICES_PER_S * load_s_per_slice,
        "pseudolabel_pass_h_with_16_loader_processes": max(
            PAPER_SLICES / H100_INFER_SLICES_PER_S,
            PAPER_SLICES * load_s_per_slice / 16) / 3600,
    }


def _mb(b: float) -> str:
    return f"{b / 2**20:.0f} MB"


def _log_n(r: dict, log) -> None:
    s = r["slices"]
    log(f"  N = {r['exams']} exams ({s['labeled']} labeled + {s['unlabeled']} unlabeled "
        f"slices):")
    for p in PHASES:
        ph = r["phases"][p]
        rate = ph["slices_per_s"]
        per = f"{1000 / rate:.2f} ms per slice" if rate else "rate n/a"
        log(f"    {p:11s} peak RSS {_mb(ph['peak_rss_tree_bytes'])} (process tree; largest "
            f"process {_mb(ph['peak_rss_bytes'])}), {per}, {ph['seconds']:.1f} s wall")
    b = r["bytes_per_slice"]
    compact = b.get("pseudo_labels_compact")
    log(f"    disk per slice: volumes {b['volumes']:.0f} B, labels {b['labels']:.0f} B, "
        f"predictions {b['predictions']:.0f} B (float16 maps as the config stores them), "
        f"pseudo-labels " + (f"{compact:.0f} B as compact targets" if compact is not None
                             else "n/a") + f"; other files the runs stored besides these "
        f"{b['other_files']:.0f} B")


def _log_summary(res: dict, exams: list[int], log) -> None:
    ratio = res["rss_ratio_largest_over_smallest"]
    log(f"  peak RSS N = {exams[-1]} / N = {exams[0]}: "
        + ", ".join(f"{p} x{ratio[p]:.2f}" for p in PHASES) + " (goal <= x1.2, < 1.5 GB)")
    e = res["extrapolation"]
    d = e["disk_bytes"]
    log(f"  extrapolated to {e['slices']:,} slices of {e['side']}x{e['side']} (bytes per voxel "
        f"of these synthetic scans; real scans compress differently): volumes "
        f"{d['volumes'] / 1e9:.0f} GB, float16 predictions {d['predictions'] / 1e9:.0f} GB "
        f"per pseudo-label run, compact pseudo-labels {d['pseudo_labels_compact'] / 1e9:.1f} GB "
        f"per run; volumes + compact pseudo-labels {e['disk_bytes_total'] / 1e9:.0f} GB")
    log(f"  one H100 (DESIGN.md rates: {H100_INFER_SLICES_PER_S:,.0f} slices/s inference, "
        f"{H100_TRAIN_PATCHES_PER_S:,.0f} patches/s training): pseudo-label pass "
        f"{e['h100_pseudolabel_pass_h']:.2f} h, one epoch over the corpus "
        f"{e['h100_epoch_over_corpus_h']:.2f} h, the paper's schedule "
        f"{e['h100_paper_schedule_h']:.2f} h; the data path here costs "
        f"{1000 * e['data_path_s_per_512_slice_one_core']:.1f} ms per 512x512 slice on one "
        f"core, so feeding the GPU needs {e['loader_processes_to_feed_inference']:.0f} loader "
        f"processes (with 16: pseudo-label pass "
        f"{e['pseudolabel_pass_h_with_16_loader_processes']:.2f} h)")


def main_scale(args) -> int:
    if not args.exams:
        raise IctviewError("bench scale: --exams N [N ...] is required")
    if min(args.exams) < 3:
        raise IctviewError(f"bench scale: --exams must be >= 3, got {min(args.exams)}")
    if args.steps < 1:
        raise IctviewError(f"bench scale: --steps must be >= 1, got {args.steps}")
    workers = None
    if args.loader_workers:
        if len(args.loader_workers) != 1 or args.loader_workers[0] < -1:
            raise IctviewError("bench scale: --loader-workers takes one number >= -1")
        workers = args.loader_workers[0]
    from training.config import load_config

    load_config(args.config or "cpu-study")  # a bad config: one line now, not per phase
    res = run_scale(args.exams, args.cache, args.config or "cpu-study", args.steps, workers,
                    args.seed_workspace, log=(lambda *_: None) if args.json else print)
    if args.json:
        json.dump(res, sys.stdout, indent=1)
        sys.stdout.write("\n")
    return 0

