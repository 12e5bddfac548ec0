"""Training runs as child processes, Qt-free: the command line, the process, its progress.

The GUI never imports torch or `training`; it runs ``python -m training.cli COMMAND
--json-progress ...`` (the `ictview-train` entry point) and reads the JSON lines the child
prints (training/progress.py: start, step, validation, checkpoint, predict, stage, warning,
interrupted, error, done).

The child's stdout and stderr go to files, not pipes, and it runs in its own session:
that is what lets the reader close the app and *leave the run going* (a pipe would break
with the GUI and kill the child at its next progress line). The files live next to the
run, ``WS/runs/<run>/launcher/<stamp>-<command>.{out,err}``; `JobProcess.poll` returns the
complete lines added since the last call.

Stopping: SIGTERM makes the trainer checkpoint at the next step and exit 75 (resumable);
`--resume` continues from that checkpoint. `ictview-train study` and `pseudolabel` continue
where they stopped when simply run again.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from ictview import resources
from ictview.errors import IctviewError
from ictview.store.workspace import safe_name

COMMANDS = ("teacher", "pseudolabel", "student", "evaluate", "study", "finetune")
VARIANTS = ("ss", "no-ranker", "image-oracle", "pixel-oracle")
RESUMABLE = ("teacher", "student", "finetune")  # take --resume; the others continue when rerun
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NONFINITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 75
CONFIG_DIR_ENV = "ICTVIEW_CONFIG_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_LINES = 400


# ---- configs --------------------------------------------------------------------------------


def config_dirs() -> list[Path]:
    """Where preset names are found: $ICTVIEW_CONFIG_DIR, then the package's configs (the
    rule of training/config.py, repeated here because the GUI must not import training)."""
    dirs = [Path(os.environ[CONFIG_DIR_ENV])] if os.environ.get(CONFIG_DIR_ENV) else []
    return dirs + [resources.CONFIGS]


def presets() -> dict[str, Path]:
    """Preset name -> TOML file (the first directory wins)."""
    out: dict[str, Path] = {}
    for d in config_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.toml")):
                out.setdefault(p.stem, p)
    return out


def read_config(name_or_path: str) -> dict:
    """A preset's (or a file's) TOML as a dict of sections; one-line IctviewError if bad."""
    p = Path(name_or_path)
    path = p if p.suffix == ".toml" else presets().get(name_or_path)
    if path is None or not Path(path).is_file():
        raise IctviewError(f"{name_or_path}: no such config")
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise IctviewError(f"{path}: {str(e).splitlines()[0]}") from None


def toml_value(v: object) -> str:
    """A value as `--set` expects it (TOML; the CLI falls back to a plain string)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) if not isinstance(x, str) else json.dumps(x)
                               for x in v) + "]"
    return str(v)


# ---- the command ----------------------------------------------------------------------------


@dataclass
class JobSpec:
    command: str  # one of COMMANDS
    workspace: Path
    run: str = ""  # the run to make (study: the prefix of every run)
    config: str = "tiny"  # preset name or .toml path
    overrides: list[str] = field(default_factory=list)  # "section.key=value"
    device: str = ""  # "", "cpu", "cuda"
    teacher: str = ""  # pseudolabel, student
    pseudolabels: str = ""  # student
    variant: str = "ss"  # student
    checkpoint: str = "final"  # pseudolabel, evaluate
    resume: bool = False
    labelsets: list[str] = field(default_factory=list)  # finetune: the raters' labelsets
    roles: list[str] = field(default_factory=list)  # evaluate: roles to predict (default config)

    def check(self) -> None:
        if self.command not in COMMANDS:
            raise IctviewError(f"unknown command '{self.command}' (one of {', '.join(COMMANDS)})")
        if self.command in ("pseudolabel", "student") and not self.teacher:
            raise IctviewError(f"{self.command}: choose the teacher run")
        if self.command == "finetune" and not (self.teacher and self.labelsets):
            raise IctviewError("finetune: choose the model to start from and the labelsets")
        if self.command == "evaluate" and not self.run:
            raise IctviewError("evaluate: choose the run to evaluate")
        for what, name in (("run", self.run), ("teacher", self.teacher),
                           ("pseudolabel run", self.pseudolabels)):
            if name and safe_name(name) != name and not (self.command == "study" and what == "run"):
                raise IctviewError(f"{what} name '{name}' may only use letters, digits, '.', '_', '-'")
        if self.variant not in VARIANTS:
            raise IctviewError(f"unknown variant '{self.variant}'")
        for o in self.overrides:
            if "=" not in o or "." not in o.split("=", 1)[0]:
                raise IctviewError(f"override '{o}': expected section.key=value")

    @property
    def output_run(self) -> str:
        """The run whose folder and progress.jsonl this job writes."""
        if self.command == "pseudolabel":
            return self.run or f"{self.teacher}-pl"
        if self.command == "student":
            return self.run or self.variant
        if self.command == "study":
            return f"{self.run}study"
        if self.command == "finetune":
            return self.run or f"{self.teacher}-ft"
        return self.run or "baseline"

    def argv(self, python: str | None = None) -> list[str]:
        self.check()
        a = [python or sys.executable, "-m", "training.cli", self.command,
             "--workspace", str(self.workspace), "--json-progress", "--config", self.config]
        for o in self.overrides:
            a += ["--set", o]
        if self.device:
            a += ["--device", self.device]
        c = self.command
        if c == "teacher":
            a += ["--run", self.output_run]
        elif c == "pseudolabel":
            a += ["--teacher", self.teacher, "--run", self.output_run,
                  "--checkpoint", self.checkpoint]
        elif c == "student":
            a += ["--teacher", self.teacher, "--variant", self.variant, "--run", self.output_run]
            if self.pseudolabels:
                a += ["--pseudolabels", self.pseudolabels]
        elif c == "evaluate":
            a += ["--run", self.run, "--checkpoint", self.checkpoint]
            if self.roles:
                a += ["--roles", *self.roles]
        elif c == "finetune":
            a += ["--from", self.teacher, "--labelsets", *self.labelsets, "--run", self.output_run]
        elif c == "study" and self.run:
            a += ["--prefix", self.run]
        if self.resume and c in RESUMABLE:
            a.append("--resume")
        return a

    def resumed(self) -> JobSpec:
        from dataclasses import replace

        return replace(self, resume=True, overrides=list(self.overrides),
                       labelsets=list(self.labelsets), roles=list(self.roles))


# ---- the process ----------------------------------------------------------------------------


class JobProcess:
    """One child process with stdout/stderr in files; `poll` hands out new complete lines."""

    def __init__(self, argv: list[str], log_dir: Path, stem: str, env: dict | None = None,
                 cwd: Path | None = None):
        self.argv = list(argv)
        self.log_dir = Path(log_dir)
        self.out_path = self.log_dir / f"{stem}.out"
        self.err_path = self.log_dir / f"{stem}.err"
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self._pos = {"out": 0, "err": 0}
        self._partial = {"out": b"", "err": b""}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        env["PYTHONUNBUFFERED"] = "1"
        (self.log_dir / f"{self.out_path.stem}.json").write_text(
            json.dumps({"argv": self.argv, "started": time.time()}) + "\n"
        )
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            try:
                # its own session: no terminal signal reaches it, and it outlives the GUI
                self.proc = subprocess.Popen(
                    self.argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                    env=env, cwd=str(self.cwd or REPO_ROOT), start_new_session=True,
                )
            except OSError as e:
                raise IctviewError(f"{self.argv[0]}: cannot start ({e.strerror or e})") from None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.returncode is None

    def _read(self, key: str, path: Path, final: bool) -> list[str]:
        try:
            with open(path, "rb") as fh:
                fh.seek(self._pos[key])
                data = fh.read()
        except FileNotFoundError:
            return []
        self._pos[key] += len(data)
        data = self._partial[key] + data
        lines = data.split(b"\n")
        self._partial[key] = b"" if final else lines.pop()
        if final and lines and lines[-1] == b"":
            lines.pop()
        return [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines]

    def poll(self) -> tuple[list[str], list[str], int | None]:
        """(new stdout lines, new stderr lines, exit code once the child has ended).
        A negative exit code is the signal that ended it (subprocess convention)."""
        if self.proc is None:
            return [], [], None
        rc = self.proc.poll() if self.returncode is None else self.returncode
        final = rc is not None  # exited: its files are complete, partial lines included
        out = self._read("out", self.out_path, final)
        err = self._read("err", self.err_path, final)
        newly_done = rc is not None and self.returncode is None
        self.returncode = rc
        return out, err, rc if newly_done else None

    def signal(self, sig: int) -> bool:
        if not self.running:
            return False
        try:
            os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def terminate(self) -> bool:
        """Ask the child to checkpoint and stop (SIGTERM)."""
        return self.signal(signal.SIGTERM)

    def kill(self) -> bool:
        return self.signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def detach(self) -> None:
        """Leave the child running on its own (the app is closing); nothing is read anymore.
        Marked as reaped so Popen does not warn about a running child at exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.returncode = 0  # we will not wait for it; the catalog has its status
        self.returncode = self.returncode if self.returncode is not None else -1


# ---- progress -------------------------------------------------------------------------------


@dataclass
class LossPoint:
    step: int
    loss: float
    seg_loss: float
    cls_loss: float


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


@dataclass
class JobState:
    """What the panel shows, built from the child's records and stderr lines."""

    command: str = ""
    status: str = "idle"  # idle, running, stopping, finished, interrupted, failed
    run: str = ""  # the run the latest record is about (a study walks through many)
    kind: str = ""
    phase: str = ""  # "train" or "predict"
    done: int = 0
    total: int = 0
    eta_s: float = math.nan
    rate: float = math.nan
    rate_unit: str = ""
    stage: str = ""  # study: the current stage
    loss: dict[str, list[LossPoint]] = field(default_factory=dict)  # run -> curve
    validation: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    val_metric: str = ""  # what `validation` holds: "pixel_ap" or "exam_auc"
    message: str = ""  # one line: why it stopped / failed
    last_error: str = ""
    last_checkpoint: str = ""
    resumed: bool = False
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    records: int = 0
    started_at: float = field(default_factory=time.time)
    train: tuple[int, int, float] = (0, 0, math.nan)  # last training (step, total, patches/s)

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0

    @property
    def active(self) -> bool:
        return self.status in ("running", "stopping")

    def feed_stdout(self, line: str) -> dict | None:
        line = line.strip()
        if not line:
            return None
        try:
            rec = json.loads(line)
        except ValueError:
            self.log.append(line)
            return None
        if not isinstance(rec, dict) or "event" not in rec:
            self.log.append(line)
            return None
        self.apply(rec)
        return rec

    def feed_stderr(self, line: str) -> None:
        line = line.rstrip()
        if not line.strip():
            return
        self.log.append(line)
        # one-line errors and the last line of a traceback are what the reader needs
        if not line.startswith((" ", "\t", "Traceback")):
            self.last_error = line

    def apply(self, rec: dict) -> None:
        self.records += 1
        ev = rec.get("event", "")
        run = str(rec.get("run", "") or self.run)
        self.run = run
        if ev == "start":
            self.kind = str(rec.get("kind", self.kind))
            if "total_steps" in rec:
                self.phase, self.total = "train", int(rec.get("total_steps") or 0)
                self.done = int(rec.get("step") or 0)
                self.resumed = bool(rec.get("resumed"))
                self.rate_unit = "patches/s"
                self.log.append(
                    f"{run}: {self.kind} on {rec.get('device', '?')}, "
                    f"{'resumed at' if self.resumed else 'from'} step {self.done} of {self.total}"
                    + (f", {rec['parameters']:,} parameters" if rec.get("parameters") else ""))
            else:
                self.phase, self.total, self.done = "predict", int(rec.get("exams") or 0), 0
                self.rate_unit = "slices/s"
                self.log.append(f"{run}: {self.kind or 'predict'} {self.total} exams on "
                                f"{rec.get('device', '?')}")
            self.eta_s = math.nan
        elif ev == "step":
            self.phase = "train"
            self.done = int(rec.get("step") or self.done)
            self.eta_s = _num(rec.get("eta_s"))
            self.rate, self.rate_unit = _num(rec.get("patches_per_s")), "patches/s"
            self.train = (self.done, self.total, self.rate)
            pt = LossPoint(self.done, _num(rec.get("loss")), _num(rec.get("seg_loss")),
                           _num(rec.get("cls_loss")))
            curve = self.loss.setdefault(run, [])
            while curve and curve[-1].step >= pt.step:  # a resumed run repeats no step
                curve.pop()
            curve.append(pt)
            self.log.append(f"{run}: step {self.done}/{self.total}  loss {pt.loss:.4f}  "
                            f"lr {_num(rec.get('lr')):.3g}  {self.rate:.0f} patches/s")
        elif ev == "predict":
            self.phase = "predict"
            self.done, self.total = int(rec.get("done") or 0), int(rec.get("total") or self.total)
            self.eta_s = _num(rec.get("eta_s"))
            self.rate, self.rate_unit = _num(rec.get("slices_per_s")), "slices/s"
            self.log.append(f"{run}: predicted {self.done}/{self.total} exams")
        elif ev == "validation":
            v = _num(rec.get("value"))
            self.val_metric = str(rec.get("metric", "") or self.val_metric)
            points = self.validation.setdefault(run, [])
            step = int(rec.get("step") or 0)
            while points and points[-1][0] >= step:  # a resumed run repeats no step
                points.pop()
            points.append((step, v))
            self.log.append(f"{run}: validation {rec.get('metric', '')} {v:.4f} "
                            f"({rec.get('exams', '?')} exams)")
        elif ev == "checkpoint":
            self.last_checkpoint = f"{rec.get('name', '')} at step {rec.get('step', '?')}"
            self.log.append(f"{run}: checkpoint {self.last_checkpoint}")
        elif ev == "stage":
            self.stage = str(rec.get("stage", ""))
            self.log.append(f"study: {self.stage}")
        elif ev in ("warning", "interrupted"):
            self.log.append(f"{run}: {ev}: {rec.get('message', '')}")
        elif ev == "error":
            self.last_error = str(rec.get("message", "")).splitlines()[0] if rec.get(
                "message") else self.last_error
            self.log.append(f"{run}: error: {self.last_error}")
        elif ev == "done":
            if self.phase == "train" and self.total:
                self.done = self.total
                self.train = (self.total, self.total, self.train[2])
            self.eta_s = 0.0
            self.log.append(f"{run}: done")

    def finish(self, returncode: int) -> None:
        """The child ended with `returncode` (negative: killed by that signal)."""
        self.eta_s = math.nan
        if returncode == EXIT_OK:
            self.status, self.message = "finished", f"{self.command or 'run'} finished"
            if self.total:
                self.done = self.total
        elif returncode == EXIT_INTERRUPTED:
            self.status = "interrupted"
            self.message = (stopped_message(self.done, self.total) if self.phase == "train"
                            else "stopped; Resume continues where it stopped")
        elif returncode < 0:
            try:
                name = signal.Signals(-returncode).name
            except ValueError:
                name = f"signal {-returncode}"
            self.status = "failed"
            self.message = f"the training process was killed ({name})" + (
                f": {self.last_error}" if self.last_error else "")
        else:
            self.status = "failed"
            why = self.last_error or f"exit status {returncode}"
            self.message = why.removeprefix("ictview-train: ")
        self.log.append(f"[{self.status}] {self.message}")


def stopped_message(step: int, total: int) -> str:
    """What a training run stopped with a checkpoint says (when it stops, and later)."""
    return f"stopped at step {step} of {total}; checkpoint saved — Resume continues from it"


def read_history(ws_root: Path, run: str) -> JobState:
    """A past run's curve and last state from WS/runs/<run>/progress.jsonl (the file every
    ictview-train command appends to, also when nobody watched it)."""
    st = JobState()
    path = Path(ws_root) / "runs" / run / "progress.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return st
    for line in lines:
        st.feed_stdout(line)
    st.status = "history"
    if st.train[1]:  # a model run: show its training, not the evaluation that followed
        st.phase, st.rate_unit = "train", "patches/s"
        st.done, st.total, st.rate = st.train
    return st


def job_stem(command: str) -> str:
    t = time.time()
    return time.strftime("%Y%m%d-%H%M%S", time.localtime(t)) + f"{t % 1:.3f}"[1:] + f"-{command}"


def start_job(spec: JobSpec, python: str | None = None) -> JobProcess:
    """Start `spec` as a child process logging under WS/runs/<run>/launcher/."""
    argv = spec.argv(python)
    log_dir = Path(spec.workspace) / "runs" / spec.output_run / "launcher"
    job = JobProcess(argv, log_dir, job_stem(spec.command))
    job.start()
    return job
