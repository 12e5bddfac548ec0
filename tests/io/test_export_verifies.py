"""Every export format verifies what it reads: a volume or label file changed behind
ictview's back stops the export with one line naming the file."""

from __future__ import annotations

import h5py
import pytest

from ictview.cli import main
from ictview.io.export_cli import FORMATS
from ictview.store.workspace import Workspace


def _labeled_reference_exam(root) -> str:
    with Workspace.open(root) as ws:
        labeled = {e.name for e in ws.exams(role="labeled")}
        return sorted(set(ws.labelset_exams("reference")) & labeled)[0]


def _export(root, fmt, out) -> int:
    return main(["export", str(root), "--labelset", "reference", "--format", fmt,
                 "--out", str(out)])


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_changed_volume_stops_every_export_format(tiny_workspace_copy, tmp_path, capsys, fmt):
    root = tiny_workspace_copy
    exam = _labeled_reference_exam(root)
    with h5py.File(root / "volumes" / f"{exam}.h5", "r+") as f:
        f["hu"][1, 3, 0:20] = 1000
    assert _export(root, fmt, tmp_path / "out") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"volumes/{exam}.h5: checksum mismatch" in err[0], err


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_changed_label_file_stops_every_export_format(tiny_workspace_copy, tmp_path, capsys,
                                                        fmt):
    root = tiny_workspace_copy
    exam = _labeled_reference_exam(root)
    path = root / "labels" / "reference" / f"{exam}.h5"
    with open(path, "r+b") as fh:  # one byte, as a disk or a careless script would
        fh.seek(path.stat().st_size - 30)
        b = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([b[0] ^ 0x01]))
    assert _export(root, fmt, tmp_path / "out") != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"reference/{exam}.h5: checksum mismatch" in err[0], err


def test_an_intact_workspace_exports(tiny_workspace_copy, tmp_path):
    assert _export(tiny_workspace_copy, "nifti", tmp_path / "out") == 0
