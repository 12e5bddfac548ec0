"""A trained model's predictions over a list of exams, into WS/predictions/<run>/.

``run_predictions`` is the shared engine of ``pseudolabel`` and ``evaluate``: a Predictor from
a run's checkpoint over a list of exams, sharded over DDP ranks (each rank writes its own
exams' files, rank 0 the run status and progress), resumable (exams already predicted are
skipped unless ``overwrite``).
"""

from __future__ import annotations

import time
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


def run_predictions(
    ws_root: Path | str,
    model_run: str,
    out_run: str,
    exams: list[str],
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
    compact_k: tuple[float, float] | None = None,
) -> dict:
    """Predict ``exams`` with ``model_run``'s checkpoint into WS/predictions/<out_run>/.
    ``compact_k`` (pseudolabel runs): the ranker's (k_hi, k_lo), used when the inference
    settings say pseudo_store = "targets"."""
    info, dev = D.init(device)
    ckpt = checkpoint_path(ws_root, model_run, checkpoint)
    if not ckpt.is_file():
        raise IctviewError(f"{ckpt}: no '{checkpoint}' checkpoint for run '{model_run}'")
    predictor = Predictor.from_checkpoint(ckpt, dev, settings, overrides=overrides or ())
    # one process predicts into a run at a time (rank 0 holds it for the world)
    lock = RunLock(Path(ws_root) / "runs" / out_run, out_run, f"ictview-train {kind}")
    with lock if info.is_main else nullcontext(), Workspace.open(ws_root) as ws:
        compact = compact_k if predictor.settings.pseudo_store == "targets" else None
        config = {"model_run": model_run, "checkpoint": str(ckpt),
                  "inference": predictor.settings.__dict__, **(extra_config or {})}
        if compact:
            config["targets_k"] = list(compact)
        run_dir = ws.run_dir(out_run)
        if info.is_main:
            if out_run != model_run:
                ws.create_run(out_run, kind, config, parent=model_run)
                ws.set_run_status(out_run, "running", config)
        D.barrier(info)
        log = ProgressLog(run_dir / "progress.jsonl" if info.is_main else None, out_run,
                          json_stdout=json_progress, total=len(exams), desc=f"{kind} {out_run}",
                          console=info.is_main and not quiet)
        mine = D.shard(exams, info)
        done_before = set() if overwrite else set(ws.predicted_exams(out_run))
        t0 = time.perf_counter()
        log.event("start", kind=kind, model_run=model_run, exams=len(exams), device=str(dev),
                  world=info.world, checkpoint=str(ckpt), already_done=len(done_before))
        slices = 0
        todo = [n for n in mine if n not in done_before]
        workers = auto_workers(predictor.settings.loader_workers, dev.type == "cuda")
        for i, (name, masked, mask) in enumerate(
            iter_masked(ws_root, todo, predictor.brain, workers)
        ):
            pred = predictor.predict_masked(masked, mask)
            pred.attrs.update({"model_run": model_run, "checkpoint": checkpoint, "exam": name})
            ws.write_prediction(out_run, name,
                                compact_prediction(pred, *compact) if compact else pred)
            slices += pred.prob.shape[0]
            dt = time.perf_counter() - t0
            done = min(len(done_before) + (i + 1) * info.world, len(exams))  # rank 0's view
            log.event("predict", done=done, total=len(exams),
                      slices_per_s=slices * info.world / dt if dt > 0 else None,
                      eta_s=(len(todo) - i - 1) * dt / (i + 1))
            log.bar(done)
        D.barrier(info)
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
