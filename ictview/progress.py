"""Progress reporting for long commands: a tqdm bar on a terminal, JSON lines for programs.

With `--json-progress` every update is one JSON object per line on stdout, which is
what the GUI reads from its child processes.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Callable

Progress = Callable[[int, int, str], None]


class JsonProgress:
    def __init__(self, task: str, stream=None, min_interval_s: float = 0.2):
        self.task, self.stream, self.min_interval_s = task, stream or sys.stdout, min_interval_s
        self._last = 0.0

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done < total and now - self._last < self.min_interval_s:
            return
        self._last = now
        event = {"event": "progress", "task": self.task, "done": done, "total": total,
                 "message": message}
        self.stream.write(json.dumps(event) + "\n")
        self.stream.flush()


class BarProgress:
    """One tqdm bar per stage name; quiet when stderr is not a terminal."""

    def __init__(self, task: str):
        self.task = task
        self._bar = None
        self._stage = None

    def __call__(self, done: int, total: int, message: str = "") -> None:
        from tqdm import tqdm

        if message != self._stage:
            self.close()
            self._stage = message
            self._bar = tqdm(total=total, desc=f"{self.task}: {message}", unit="it",
                             leave=False, disable=None, file=sys.stderr)
        if self._bar is not None:
            if total != self._bar.total:
                self._bar.total = total
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(task: str, json_lines: bool) -> Progress:
    return JsonProgress(task) if json_lines else BarProgress(task)
