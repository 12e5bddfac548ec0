"""torchrun / DistributedDataParallel: process group, device per rank, sharding, reductions.

Launch: ``torchrun --nproc_per_node N -m training.cli teacher ...`` (or
``python -m torch.distributed.run``). Without torchrun's environment (WORLD_SIZE unset or 1)
everything here is a no-op and the run is single-process.

- backend: NCCL when the device is CUDA (one GPU per rank: cuda:LOCAL_RANK), gloo on CPU;
- training data: every rank renders its own positions of the same global batch
  (``training.data.batches.BatchMaker``), so the data are sharded by rank and the global batch size
  does not depend on the number of ranks;
- inference (pseudolabel, evaluate): exams are sharded ``exams[rank::world]``; each rank writes
  its own exams' prediction files (one file per exam, atomic replace, so ranks never touch the
  same file); rank 0 alone writes checkpoints, run status, metrics and progress logs, and is
  the only rank that opens the live catalog: the others read an immutable snapshot of it
  (training/prediction_run.py, ictview/store/snapshot.py; README "Shared filesystem").
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from ictview.errors import IctviewError

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve_device(pref: str = "auto", local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:LOCAL_RANK when CUDA is available, else cpu; 'cuda' -> cuda:LOCAL_RANK."""
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device("cuda", local_rank) if pref == "cuda" else torch.device(pref)
    except RuntimeError:
        raise IctviewError(
            f"device '{pref}': not a device name (auto, cpu, cuda, cuda:N)"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise IctviewError(f"device '{pref}': CUDA is not available on this machine")
    return dev


def init(device_pref: str = "auto") -> tuple[DistInfo, torch.device]:
    """Join the torchrun process group when there is one; returns (info, this rank's device)."""
    world = env_world()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_pref, local_rank)
    if world <= 1:
        return DistInfo(), device
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank, backend), device


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shard(items: Sequence[T], info: DistInfo) -> list[T]:
    return list(items[info.rank :: info.world])


def decided_by_main(fn: Callable[[], T], info: DistInfo) -> T:
    """``fn()`` run on rank 0 alone (it may open the live catalog), its result, or its
    IctviewError, on every rank: the other ranks need not open the catalog to agree."""
    if not info.enabled:
        return fn()
    box: list = [None]
    if info.is_main:
        try:
            box[0] = ("ok", fn())
        except IctviewError as e:
            box[0] = ("error", str(e))
    dist.broadcast_object_list(box, src=0)
    kind, value = box[0]
    if kind == "error":
        raise IctviewError(value)
    return value


def gather_to_main(obj: T, info: DistInfo) -> list[T]:
    """Every rank's `obj` (picklable) on rank 0, in rank order; [] on the other ranks."""
    if not info.enabled:
        return [obj]
    out: list | None = [None] * info.world if info.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out or []


def wrap_ddp(model: torch.nn.Module, info: DistInfo, device: torch.device) -> torch.nn.Module:
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def mean_over_ranks(value: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if not info.enabled:
        return value
    v = value.detach().clone().float()
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / info.world


def any_rank(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """True when any rank says True (stop requests must be agreed on the same step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)
