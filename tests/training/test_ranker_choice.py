"""The C / K chosen by a radiologist in threshold inspection reaches the next student."""

from __future__ import annotations

from ictview.store.workspace import Workspace
from ictview.study.ranker_review import save_choice
from training.cli import _ranker_choice
from training.config import load_config


def test_chosen_ranker_becomes_the_students_config(tiny_workspace_copy, capsys):
    assert _ranker_choice(tiny_workspace_copy, "baseline-pl") == []
    with Workspace.open(tiny_workspace_copy) as ws:
        ws.create_run("baseline-pl", "pseudolabel", {})
        save_choice(ws, "baseline-pl", 20.0, 0.8, 0.25, chosen_by="dr-lee")
    sets = _ranker_choice(tiny_workspace_copy, "baseline-pl")
    assert "C=20%" in capsys.readouterr().err
    cfg = load_config("tiny", sets)
    assert (cfg.ranker.top_percent, cfg.ranker.k_hi, cfg.ranker.k_lo) == (20.0, 0.8, 0.25)
    # an explicit --set on the command line still wins
    cfg = load_config("tiny", sets + ["ranker.top_percent=5"])
    assert cfg.ranker.top_percent == 5.0
