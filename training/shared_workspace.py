"""Which catalog each torchrun rank opens (a workspace on a filesystem several nodes share).

SQLite in WAL mode and POSIX locks are unsafe on network filesystems, so under torchrun
only rank 0 opens the live catalog (WS/workspace.sqlite) and writes it. Once it holds the
run (RunLock), rank 0 writes an immutable snapshot of the catalog into
WS/runs/<run>/catalog.snapshot.sqlite (ictview/store/snapshot.py); ranks > 0 open that,
read-only and immutable (no lock, no -wal / -shm), and write only their own per-exam
files by atomic rename. One process (no torchrun): the live workspace, as always.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import torch

from ictview.errors import IctviewError
from ictview.store.snapshot import SNAPSHOT_NAME, write_snapshot
from ictview.store.workspace import Workspace
from training import distributed as D


def snapshot_path(ws_root: Path | str, run: str) -> Path:
    return Path(ws_root) / "runs" / run / SNAPSHOT_NAME


def share_catalog(live: Workspace | None, ws_root: Path | str, run: str, info: D.DistInfo,
                  error: IctviewError | None = None) -> None:
    """Rank 0 (holding the run) writes the snapshot; every rank then agrees on whether
    rank 0 failed, this step or before (`error`): none waits at a barrier for a rank
    that has left. Raises the error (rank 0) or a one-line pointer to it (the others)."""
    if not info.enabled:
        if error is not None:
            raise error
        return
    if info.is_main and error is None:
        try:
            write_snapshot(live.con, snapshot_path(ws_root, run))
        except IctviewError as e:
            error = e
    if D.any_rank(error is not None, info, _reduce_device(info)):
        raise error or IctviewError(f"run '{run}': refused on rank 0 (see its error)")


def open_view(ws_root: Path | str, run: str) -> Workspace:
    """What a rank > 0 reads: the workspace through rank 0's snapshot of its catalog."""
    return Workspace.open_snapshot(ws_root, snapshot_path(ws_root, run))


@contextmanager
def rank_views(ws_root: Path | str, run: str, info: D.DistInfo
               ) -> Iterator[tuple[Workspace | None, Workspace]]:
    """(live workspace or None, the workspace this rank reads from).

    One process: the live workspace, both. Under torchrun, rank 0: (live, snapshot view);
    ranks > 0: (None, snapshot view). Every rank reads the same snapshot, so lists drawn
    from it (the exams to shard) are the same on every rank."""
    if not info.enabled:
        with Workspace.open(ws_root) as ws:
            yield ws, ws
        return
    with ExitStack() as stack:
        live, error = None, None
        if info.is_main:
            try:
                live = stack.enter_context(Workspace.open(ws_root))
            except IctviewError as e:
                error = e
        share_catalog(live, ws_root, run, info, error)
        yield live, stack.enter_context(open_view(ws_root, run))


def _reduce_device(info: D.DistInfo) -> torch.device:
    # NCCL reduces CUDA tensors only; gloo CPU ones
    if info.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
