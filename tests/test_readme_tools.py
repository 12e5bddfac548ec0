"""README "Use with other tools": every ictview command of the section runs as written.

nnU-Net's and MONAI's own commands are not run (they need those tools and hours of
training); where the section hands over to them, this test writes what they would write:
nnUNetv2_predict's label maps on the imagesTs grids, and MONAI SaveImage-style 4D class
probabilities. The other nnUNetv2_* lines are checked for the dataset id only.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from ictview.cli import main as ictview_main
from ictview.core.geometry import zyx_to_nifti
from ictview.store.workspace import Workspace
from training.cli import main as train_main

README = Path(__file__).resolve().parents[1] / "README.md"


def section_commands() -> list[str]:
    text = README.read_text()
    body = text.split("## Use with other tools", 1)[1].split("\n## ", 1)[0]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", body, flags=re.S):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip() if not line.startswith("#") else ""
            if line:
                lines.append(line)
    return lines


def _stand_in_for_nnunet_predict(argv: list[str], ws: Path) -> None:
    src, out = Path(argv[argv.index("-i") + 1]), Path(argv[argv.index("-o") + 1])
    out.mkdir(parents=True)
    with Workspace.open(ws) as w:
        for image in sorted(src.glob("*_0000.nii.gz")):
            exam = image.name[: -len("_0000.nii.gz")]
            ref = nib.load(str(image))
            labels = w.load_labels("reference", exam)
            if labels is None:
                labels = np.zeros(ref.shape[::-1], np.uint8)
            data = zyx_to_nifti(np.where(labels == 255, 0, labels).astype(np.uint8))
            nib.save(nib.Nifti1Image(data, ref.affine), str(out / f"{exam}.nii.gz"))


def _stand_in_for_monai_inference(data_dir: Path, out: Path) -> None:
    datalist = json.loads((data_dir / "datalist.json").read_text())
    for entry in datalist["test"]:
        ref = nib.load(str(data_dir / entry["image"]))
        rng = np.random.default_rng(len(entry["exam"]))
        p = rng.random(ref.shape).astype(np.float32)
        folder = out / entry["exam"]
        folder.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.stack([1 - p, p], axis=-1), ref.affine),
                 str(folder / f"{entry['exam']}_seg.nii.gz"))


@pytest.mark.slow
def test_use_with_other_tools_section_runs(tiny_workspace, tmp_path):
    commands = section_commands()
    assert sum(c.startswith("ictview") for c in commands) >= 7
    shutil.copytree(tiny_workspace, tmp_path / "ws")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for line in commands:
            argv = shlex.split(line)
            if argv[0] == "ictview":
                if argv[1] == "import-predictions" and "monai-predictions" in argv:
                    _stand_in_for_monai_inference(Path("monai-data"), Path("monai-predictions"))
                assert ictview_main(argv[1:]) == 0, line
            elif argv[0] == "ictview-train":
                assert train_main(argv[1:]) == 0, line
            elif argv[0] == "nnUNetv2_predict":
                _stand_in_for_nnunet_predict(argv, Path("ws"))
            elif argv[0].startswith("nnUNetv2_"):
                assert "501" in argv  # the dataset the export wrote: Dataset501_ICH
            else:
                pytest.fail(f"README command not covered by this test: {line}")
        assert (Path("labels-nifti") / "labels.ctbl").is_file()
        assert (Path("labels-nifti") / "labels.itksnap.txt").is_file()
        assert any(Path("labels-seg").glob("*.seg.dcm"))
        assert json.loads(Path("nnUNet_raw/Dataset501_ICH/dataset.json").read_text())["numTraining"]
        with Workspace.open("ws") as ws:
            assert ws.run("nnunet")["kind"] == ws.run("monai")["kind"] == "external"
        assert any(Path("report-external").iterdir())
    finally:
        os.chdir(cwd)
