"""Command-line conventions both commands follow (issue 14): --version, logging options,
imports that import nothing, absolute and relocatable sources, argument checks before torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ictview.cli import main
from ictview.store.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _run(args: list[str], cwd: Path | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=_env(), cwd=cwd, timeout=120, **kw)


@pytest.mark.parametrize("module, prog", [("ictview.cli", "ictview"),
                                          ("training.cli", "ictview-train")])
def test_version_is_the_installed_distributions(module, prog):
    from importlib.metadata import version

    r = _run(["-m", module, "--version"])
    assert r.returncode == 0
    assert r.stdout.strip() == f"{prog} {version('ictview')}"


# the child reports whether torch got imported, whatever main() returned
_NO_TORCH = (
    "import sys\n"
    "from training.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


@pytest.mark.parametrize("argv, needle", [
    (["teacher", "-w", "{ws}", "--config", "tiny", "--set", "bogus.x=1"], "unknown section [bogus]"),
    (["teacher", "-w", "{ws}", "--config", "nope"], "nope"),
    (["student", "-w", "{ws}", "--teacher", "t", "--set", "train.epochs=many"], "train.epochs"),
    (["evaluate", "-w", "{ws}/missing", "--run", "x"], "workspace folder not found"),
])
def test_train_rejects_bad_arguments_before_importing_torch(argv, needle, tmp_path):
    (tmp_path / "workspace.sqlite").touch()
    argv = [a.replace("{ws}", str(tmp_path)) for a in argv]
    t0 = time.monotonic()
    r = _run(["-c", _NO_TORCH, *argv])
    elapsed = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1] == "NO-TORCH", r.stderr
    assert needle in lines[0] and lines[0].startswith("ictview-train: "), lines
    assert len(lines) == 2, r.stderr  # one error line, no traceback
    # generous: the point is "no torch import" (15-20 s on this machine), checked above
    assert elapsed < 30


def test_top_level_help_is_clean():
    r = _run(["-m", "training.cli", "--help"])
    assert r.returncode == 0
    assert "``" not in r.stdout and "entry point" not in r.stdout
    for command in ("teacher", "study", "report", "--version", "--log-file", "--verbose"):
        assert command in r.stdout


def test_verbose_and_log_file_on_both_commands(tiny_workspace, tmp_path):
    log = tmp_path / "logs" / "ictview.log"
    r = _run(["-m", "ictview.cli", "info", str(tiny_workspace), "-v", "--log-file", str(log)])
    assert r.returncode == 0, r.stderr
    assert "INFO ictview: ictview info" in r.stderr
    assert "ictview info" in log.read_text()
    log2 = tmp_path / "train.log"
    r = _run(["-m", "training.cli", "--log-file", str(log2), "teacher", "-w",
              str(tmp_path / "none")])
    assert r.returncode == 1
    text = log2.read_text()
    assert "teacher -w" in text and "workspace folder not found" in text
    r = _run(["-m", "training.cli", "-v", "bench", "--help"])
    assert r.returncode == 0


def test_info_on_a_file_says_it_is_a_file(tiny_workspace, capsys):
    assert main(["info", str(tiny_workspace / "workspace.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file, not a workspace folder" in err and str(tiny_workspace) in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize("content", ["empty", "jpegs"])
def test_import_of_nothing_fails_and_leaves_no_site(content, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    if content == "jpegs":
        for i in range(3):
            (src / f"photo{i}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    ws = tmp_path / "ws"
    rc = main(["import", str(src), "--workspace", str(ws), "--site", "x", "--role", "test"])
    assert rc != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing imported" in err and str(src) in err
    assert not ws.exists()
    # into an existing workspace: no site row either, the workspace itself untouched
    with Workspace.create(ws):
        pass
    rc = main(["import", str(src), "--workspace", str(ws), "--site", "x", "--role", "test"])
    assert rc != 0
    with Workspace.open(ws) as w:
        assert w.sites() == {}
    assert (ws / "workspace.sqlite").exists()


def test_synth_overwrite_flag(tmp_path, capsys):
    out = tmp_path / "s"
    (out).mkdir()
    (out / "manifest.json").write_text(json.dumps({"generator": "ictview-synth"}))
    (out / "stale.txt").write_text("x")
    # without --overwrite: refused, and the message names the flag, not a Python argument
    assert main(["synth", "--preset", "tiny", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    from ictview.cli import build_parser

    assert build_parser().parse_args(["synth", "--preset", "tiny", "--out", "x",
                                      "--overwrite"]).overwrite


@pytest.mark.slow
def test_synth_overwrite_replaces_an_earlier_output(tmp_path, capsys):
    out = tmp_path / "s"
    (out / "atlantis").mkdir(parents=True)
    (out / "atlantis" / "stale.dcm").write_bytes(b"old")
    (out / "manifest.json").write_text(json.dumps({"generator": "ictview-synth"}))
    assert main(["synth", "--preset", "tiny", "--out", str(out), "--overwrite"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["preset"] == "tiny" and not (out / "atlantis" / "stale.dcm").exists()


def test_relative_import_then_seg_export_and_relocate(synth_tiny, tmp_path, capsys):
    """The README's relative-path imports: the source is stored resolved, so SEG export works
    from another folder; after the data move, `relocate` makes it work again."""
    data = tmp_path / "data"
    shutil.copytree(synth_tiny / "atlantis", data / "atlantis")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["import", "data/atlantis/dicom", "--workspace", "ws", "--site", "atlantis",
                     "--role", "labeled", "--masks", "reference=data/atlantis/masks"]) == 0
    finally:
        os.chdir(cwd)
    ws = tmp_path / "ws"
    with Workspace.open(ws) as w:
        sources = [r[0] for r in w.con.execute("SELECT source FROM exams")]
        exam = next(e for e in w.labelset_exams("reference")
                    if (w.load_labels("reference", e) % 255).any())
    assert sources and all(Path(s).is_absolute() and Path(s).is_dir() for s in sources)
    out = tmp_path / "seg"
    argv = ["export", str(ws), "--labelset", "reference", "--format", "dicom-seg",
            "--out", str(out), "--exam", exam]
    assert main(argv) == 0 and (out / f"{exam}.seg.dcm").exists()

    moved = tmp_path / "moved"
    (data).rename(moved)
    capsys.readouterr()
    assert main(argv) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["relocate", str(ws), "--from", str(data), "--to", str(moved)]) == 0
    assert "relocated the source of" in capsys.readouterr().out
    shutil.rmtree(out)
    assert main(argv) == 0 and (out / f"{exam}.seg.dcm").exists()
    with Workspace.open(ws) as w:
        n = w.con.execute("SELECT COUNT(*) FROM audit_log WHERE action='relocate_source'")
        assert n.fetchone()[0] == len(sources)
    assert main(["relocate", str(ws), "--from", str(data), "--to", str(tmp_path / "no")]) == 2


def test_progress_on_a_non_terminal_prints_lines(tmp_path):
    import io

    from ictview.progress import LineProgress

    buf = io.StringIO()
    p = LineProgress("synth", stream=buf, interval_s=0.2)
    p(0, 3, "rendering")
    assert buf.getvalue() == ""  # quick work stays quiet
    time.sleep(0.7)  # no update for a while: the heartbeat repeats the state
    p(3, 3, "rendering")
    p.close()
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("synth: rendering 0/3")
    assert lines[-1].startswith("synth: rendering 3/3")
    assert len(lines) >= 3
    quick = io.StringIO()
    q = LineProgress("x", stream=quick, interval_s=5)
    q(1, 1, "done")
    q.close()
    assert quick.getvalue() == ""


def test_training_progress_on_a_non_terminal_prints_lines(tmp_path, monkeypatch, capsys):
    import training.progress as tp

    monkeypatch.setattr(tp, "LINE_INTERVAL_S", 0.2)
    log = tp.ProgressLog(tmp_path / "progress.jsonl", "r", total=3, desc="teacher")
    log.bar(1, loss=0.5)
    assert capsys.readouterr().err == ""  # quick work stays quiet
    time.sleep(0.3)
    log.bar(2, loss=0.4)
    log.bar(3, loss=0.3)
    log.close()
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("teacher: 2/3 loss 0.4") and lines[-1].startswith("teacher: 3/3")
