"""A run imported from another tool (`ictview import-predictions`) shows in review, compare
and the dashboard beside ictview's own runs."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from ictview.cli import main
from ictview.core.geometry import zyx_to_nifti
from ictview.store.workspace import Workspace

from .panels_support import add_runs


@pytest.fixture
def external_ws(tiny_workspace_copy, tmp_path):
    root = tiny_workspace_copy
    add_runs(root, runs=(("baseline", "teacher", 0.9),))
    ds = tmp_path / "Dataset501_ICH"
    assert main(["export", str(root), "--labelset", "reference", "--format", "nnunet",
                 "--out", str(ds)]) == 0
    out = tmp_path / "pred"
    out.mkdir()
    with Workspace.open(root) as ws:
        for image in sorted((ds / "imagesTs").glob("*_0000.nii.gz")):
            exam = image.name[: -len("_0000.nii.gz")]
            labels = ws.load_labels("reference", exam)
            ref = nib.load(str(image))
            data = np.zeros(ref.shape, np.uint8) if labels is None else \
                zyx_to_nifti(np.where(labels == 255, 0, labels).astype(np.uint8))
            nib.save(nib.Nifti1Image(data, ref.affine), str(out / f"{exam}.nii.gz"))
    assert main(["import-predictions", str(root), "--run", "nnunet", "--from", str(out),
                 "--kind", "labels"]) == 0
    return root


def test_external_run_is_listed_by_review_compare_and_dashboard(qtbot, external_ws):
    from ictview.gui.app import ensure_app
    from ictview.gui.review.compare_view import CompareView
    from ictview.gui.review.dashboard import Dashboard
    from ictview.gui.review.review_view import ReviewView

    ensure_app()
    review = ReviewView(external_ws, headless=True)
    qtbot.addWidget(review)
    assert "nnunet" in [review.run_combo.itemText(i) for i in range(review.run_combo.count())]
    review.shutdown()
    compare = CompareView(external_ws, headless=True)
    qtbot.addWidget(compare)
    assert {"baseline", "nnunet"} <= {compare.combo_a.itemText(i)
                                      for i in range(compare.combo_a.count())}
    compare.shutdown()
    dash = Dashboard(external_ws, headless=True)
    qtbot.addWidget(dash)
    assert dash.selected_runs() == ["baseline", "nnunet"]  # few runs: all checked
    dash.shutdown()
