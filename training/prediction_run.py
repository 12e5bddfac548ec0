"""A trained model's predictions over a list of exams, into WS/predictions/<run>/.

``run_predictions`` is the shared engine of ``pseudolabel`` and ``evaluate``: a Predictor from
a run's checkpoint over a list of exams, sharded over DDP ranks (each rank writes its own
exams' files, rank 0 the run status and progress), resumable (exams already predicted are
skipped unless ``overwrite``).

Under torchrun (a workspace on a filesystem shared by several nodes) only rank 0 opens the
live catalog. It first writes an immutable snapshot of it (WS/runs/<out_run>/
catalog.snapshot.sqlite, training/shared_workspace.py); every rank, rank 0 included, chooses
the exams from that snapshot, so all ranks shard the same list; ranks > 0 read the catalog
only through the snapshot (read-only, immutable: no lock, no WAL) and write only their own
exams' prediction files; rank 0 records every rank's files in the catalog at the end (the
sha1s gathered from the ranks, which hashed what they renamed into place).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

from ictview.errors import IctviewError
from ictview.store.run_lock import RunLock
from ictview.store.workspace import Workspace
from training import distributed as D
from training.checkpoints import checkpoint_path
from training.config import InferenceSection
from training.data.exam_loader import auto_workers, iter_masked
from training.inference import Predictor
from training.progress import ProgressLog
from training.ranker import compact_prediction
from training.shared_workspace import rank_views


def run_predictions(
    ws_root: Path | str,
    model_run: str,
    out_run: str,
    exams: list[str] | Callable[[Workspace], list[str]],
    *,
    kind: str,
    checkpoint: str = "final",
    settings: InferenceSection | None = None,
    overrides: list[str] | None = None,
    device: str = "auto",
    json_progress: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    extra_config: dict | None = None,
    compact_k: tuple[float, float] | Callable[[Workspace], tuple[float, float]] | None = None,
) -> dict:
    """Predict ``exams`` with ``model_run``'s checkpoint into WS/predictions/<out_run>/.
    ``exams``: the names, or a function choosing them from a workspace (under torchrun it
    is given each rank's view of the same catalog snapshot: pass one there). ``compact_k``
    (pseudolabel runs): the ranker's (k_hi, k_lo), or a function of that same workspace
    giving them, used when the inference settings say pseudo_store = "targets"."""
    info, dev = D.init(device)
    ckpt = checkpoint_path(ws_root, model_run, checkpoint)
    if not ckpt.is_file():
        raise IctviewError(f"{ckpt}: no '{checkpoint}' checkpoint for run '{model_run}'")
    predictor = Predictor.from_checkpoint(ckpt, dev, settings, overrides=overrides or ())
    # one process predicts into a run at a time (rank 0 holds it for the world)
    lock = RunLock(Path(ws_root) / "runs" / out_run, out_run, f"ictview-train {kind}")
    with lock if info.is_main else nullcontext(), rank_views(ws_root, out_run, info) as (ws, view):
        exams = exams(view) if callable(exams) else list(exams)
        if callable(compact_k):
            compact_k = compact_k(view)
        compact = compact_k if predictor.settings.pseudo_store == "targets" else None
        config = {"model_run": model_run, "checkpoint": str(ckpt),
                  "inference": predictor.settings.__dict__, **(extra_config or {})}
        if compact:
            config["targets_k"] = list(compact)
        run_dir = view.run_dir(out_run)
        if info.is_main:
            if out_run != model_run:
                ws.create_run(out_run, kind, config, parent=model_run)
                ws.set_run_status(out_run, "running", config)
        D.barrier(info)
        log = ProgressLog(run_dir / "progress.jsonl" if info.is_main else None, out_run,
                          json_stdout=json_progress, total=len(exams), desc=f"{kind} {out_run}",
                          console=info.is_main and not quiet)
        mine = D.shard(exams, info)
        done_before = set() if overwrite else set(view.predicted_exams(out_run))
        t0 = time.perf_counter()
        log.event("start", kind=kind, model_run=model_run, exams=len(exams), device=str(dev),
                  world=info.world, checkpoint=str(ckpt), already_done=len(done_before))
        slices = 0
        todo = [n for n in mine if n not in done_before]
        written: dict[str, str] = {}
        workers = auto_workers(predictor.settings.loader_workers, dev.type == "cuda")
        for i, (name, masked, mask) in enumerate(
            iter_masked(ws_root, todo, predictor.brain, workers)
        ):
            pred = predictor.predict_masked(masked, mask)
            pred.attrs.update({"model_run": model_run, "checkpoint": checkpoint, "exam": name})
            stored = compact_prediction(pred, *compact) if compact else pred
            if ws is not None:
                ws.write_prediction(out_run, name, stored)
            else:  # a rank > 0: the file only; rank 0 records it
                written[name] = view.write_prediction_file(out_run, name, stored)
            slices += pred.prob.shape[0]
            dt = time.perf_counter() - t0
            done = min(len(done_before) + (i + 1) * info.world, len(exams))  # rank 0's view
            log.event("predict", done=done, total=len(exams),
                      slices_per_s=slices * info.world / dt if dt > 0 else None,
                      eta_s=(len(todo) - i - 1) * dt / (i + 1))
            log.bar(done)
        D.barrier(info)
        if info.enabled:
            gathered = D.gather_to_main(written, info)
            if info.is_main:
                _record_rank_files(ws, out_run, exams, gathered)
        dt = time.perf_counter() - t0
        summary = {"exams": len(exams), "slices_this_rank": slices, "seconds": round(dt, 3),
                   "slices_per_s_this_rank": slices / dt if dt > 0 else None,
                   "loader_workers": workers}
        if info.is_main:
            if out_run != model_run:
                ws.set_run_status(out_run, "finished")
            log.event("done", **summary)
        log.close()
    return summary


def _record_rank_files(ws: Workspace, run: str, exams: list[str],
                       gathered: list[dict[str, str]]) -> None:
    """Rank 0: record the other ranks' prediction files (their own sha1s), then any file
    of `exams` still without a row (a rank of an earlier, killed run wrote it and never
    reported it): hashed here, so `ictview check` verifies it from now on."""
    sha1s: dict[str, str] = {}
    for part in gathered:
        sha1s.update(part)
    ws.record_predictions(run, sha1s)
    ws.record_unrecorded_predictions(run, exams)
