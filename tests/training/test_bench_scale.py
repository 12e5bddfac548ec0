"""`ictview-train bench scale` on tiny N: every figure it reports is there and positive.

No timing assertions (the machine is shared): only that the bench measures what it says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ictview.store.workspace import Workspace
from training.bench_scale import PHASES, build_workspace, run_scale
from training.cli import main


@pytest.mark.slow
def test_bench_scale_reports_rss_disk_and_rates_per_n(tiny_workspace, tmp_path: Path) -> None:
    lines: list[str] = []
    res = run_scale([6, 3], cache=tmp_path / "cache", steps=2, seed_ws=tiny_workspace,
                    log=lines.append)
    assert list(res["by_exams"]) == ["3", "6"]
    for n, r in res["by_exams"].items():
        assert r["exams"] == int(n)
        assert r["slices"]["labeled"] > 0 and r["slices"]["unlabeled"] > 0
        for phase in PHASES:
            ph = r["phases"][phase]
            assert ph["peak_rss_bytes"] > 0 and ph["peak_rss_tree_bytes"] >= ph["peak_rss_bytes"]
            assert ph["seconds"] > 0 and ph["slices_per_s"] > 0 and ph["seconds_per_slice"] > 0
        b = r["bytes_per_slice"]
        assert b["volumes"] > 0 and b["labels"] > 0 and b["predictions"] > 0
        assert b["pseudo_labels_compact"] > 0 and b["other_files"] >= 0
    assert set(res["rss_ratio_largest_over_smallest"]) == set(PHASES)
    assert all(v > 0 for v in res["rss_ratio_largest_over_smallest"].values())
    e = res["extrapolation"]
    assert e["disk_bytes_total"] > 0 and e["h100_pseudolabel_pass_h"] > 0
    assert e["data_path_s_per_512_slice_one_core"] > 0
    assert any("peak RSS N = 6 / N = 3" in line for line in lines)
    # built once: the cache is reused and the measurement left it as it was
    cache = tmp_path / "cache"
    built = sorted(p.name for p in cache.glob("ws-*"))
    assert len(built) == 2 and not list(cache.glob("scale-run-*"))
    ws6 = next(cache.glob("ws-6-*"))
    assert build_workspace(cache, 6, tiny_workspace, None) == ws6
    assert not (ws6 / "runs" / "scale-teacher").exists()
    with Workspace.open(ws6) as ws:
        assert len(ws.exams(role="labeled")) == 2 and len(ws.exams(role="unlabeled")) == 4


def test_bench_scale_bad_arguments_are_one_line(capsys, tmp_path: Path) -> None:
    assert main(["bench", "scale", "--exams", "2", "--cache", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "--exams must be >= 3" in err and len(err.splitlines()) == 1
    assert main(["bench", "--exams", "5"]) == 1
    assert "bench scale" in capsys.readouterr().err
