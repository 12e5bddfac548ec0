"""Progress reporting for long commands: a tqdm bar on a terminal, plain lines when stderr
is redirected (a log file, CI), JSON lines for programs.

With `--json-progress` every update is one JSON object per line on stdout, which is
what the GUI reads from its child processes. Redirected output gets a line every
LINE_INTERVAL_S while work goes on (a heartbeat thread repeats the last state when an
update takes longer), and the end of each stage once lines were printed, so a log never
goes silent for minutes while a short command stays quiet.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Callable

Progress = Callable[[int, int, str], None]
LINE_INTERVAL_S = 10.0


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


class LineProgress:
    """Plain progress lines on stderr for a non-terminal: 'task: stage 3/10 (12 s)'."""

    def __init__(self, task: str, stream=None, interval_s: float = LINE_INTERVAL_S):
        self.task, self.stream, self.interval_s = task, stream or sys.stderr, interval_s
        self._start = time.monotonic()
        self._last_line = self._start  # a command done within interval_s prints nothing
        self._printed = False
        self._state: tuple[int, int, str] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _line(self, now: float) -> None:
        done, total, message = self._state  # type: ignore[misc]
        of = f"{done}/{total}" if total else f"{done}"
        self.stream.write(f"{self.task}: {message} {of} ({now - self._start:.0f} s)\n")
        self.stream.flush()
        self._last_line = now
        self._printed = True

    def __call__(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        with self._lock:
            self._state = (done, total, message)
            finished = total and done >= total
            if now - self._last_line >= self.interval_s or (finished and self._printed):
                self._line(now)
        if self._thread is None:
            self._thread = threading.Thread(target=self._heartbeat, daemon=True,
                                            name=f"progress {self.task}")
            self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.interval_s / 4):
            with self._lock:
                now = time.monotonic()
                if self._state is not None and now - self._last_line >= self.interval_s:
                    self._line(now)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
            self._thread = None


def make_progress(task: str, json_lines: bool) -> Progress:
    if json_lines:
        return JsonProgress(task)
    return BarProgress(task) if sys.stderr.isatty() else LineProgress(task)


def close_progress(progress) -> None:
    close = getattr(progress, "close", None)
    if close is not None:
        close()
