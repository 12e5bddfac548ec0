"""Training progress: WS/runs/<run>/progress.jsonl always, JSON lines on stdout with
``--json-progress``, a tqdm bar on a terminal otherwise.

Every record is one JSON object: ``{"event": ..., "run": ..., "time": ..., ...}``. Events:
``start``, ``step`` (step, epoch, loss, seg_loss, cls_loss, lr, patches_per_s, eta_s),
``validation``, ``checkpoint``, ``interrupted``, ``error``, ``done``, and for inference steps
``predict`` (done, total, slices_per_s, eta_s). The GUI reads the stdout stream of its child
process; the file survives the process for later inspection and for resumed runs (appended).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

LINE_INTERVAL_S = 10.0  # the most a redirected log stays silent between step lines


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


class ProgressLog:
    def __init__(
        self,
        path: Path | None,
        run: str,
        json_stdout: bool = False,
        total: int = 0,
        desc: str = "",
        console: bool = True,
    ):
        """path: the progress.jsonl to append to (None: no file, e.g. on DDP ranks > 0);
        console: False for --quiet and non-main ranks (the file is still written)."""
        self.path = Path(path) if path else None
        self.run = run
        self.json_stdout = json_stdout and console
        self.console = console
        self._bar = None
        # redirected stderr (a log, CI): a plain line at most every LINE_INTERVAL_S instead
        self._lines = bool(console and not json_stdout and total and not sys.stderr.isatty())
        self._total, self._desc = total, desc or run
        self._last_line = time.monotonic()  # a run done within LINE_INTERVAL_S prints nothing
        self._printed = False
        if console and not json_stdout and total:
            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal (logs, CI, child processes)
            self._bar = tqdm(total=total, desc=desc or run, unit="step", disable=None,
                             file=sys.stderr, dynamic_ncols=True)

    def event(self, event: str, **fields) -> dict:
        rec = {"event": event, "run": self.run, "time": round(time.time(), 3)}
        rec.update({k: _clean(v) for k, v in fields.items()})
        line = json.dumps(rec)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as fh:
                fh.write(line + "\n")
        if self.json_stdout:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return rec

    def bar(self, n: int, **postfix) -> None:
        now = time.monotonic()
        finished = n >= self._total and self._printed
        if self._lines and (now - self._last_line >= LINE_INTERVAL_S or finished):
            self._last_line, self._printed = now, True
            extra = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                             for k, v in postfix.items())
            print(f"{self._desc}: {n}/{self._total} {extra}".rstrip(), file=sys.stderr,
                  flush=True)
        if self._bar is not None:
            self._bar.n = n
            self._bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v)
                                   for k, v in postfix.items()}, refresh=False)
            self._bar.refresh()

    def message(self, text: str) -> None:
        """A human line on stderr (not in JSON mode, where stdout carries everything)."""
        if self.console and not self.json_stdout:
            if self._bar is not None:
                self._bar.write(text, file=sys.stderr)
            else:
                print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def read_progress(path: Path) -> list[dict]:
    """All records of a progress.jsonl (a torn last line after a kill is skipped)."""
    out = []
    try:
        lines = Path(path).read_text().splitlines()
    except FileNotFoundError:
        return out
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def load_average() -> str:
    """The 1/5/15-minute load averages as printed beside a benchmark's figures (a shared
    2-core machine: the load says how far to trust them)."""
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"
