"""Where a run's checkpoints live and how they are written (a kill leaves the previous whole).

A leaf module: the trainer writes checkpoints, prediction runs and the CLI find them, and none
of those needs the others for it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    torch.save(obj, tmp)
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def checkpoint_path(ws_root: Path | str, run: str, which: str = "final") -> Path:
    return Path(ws_root) / "runs" / run / "checkpoints" / f"{which}.pt"
