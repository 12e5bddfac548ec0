"""`ictview bench io` runs end to end (figures are printed, never asserted)."""

from __future__ import annotations

from ictview.io.bench import bench_io


def test_bench_io_reads_the_same_volume_both_ways(tmp_path, capsys):
    calls = []
    result = bench_io(repeats=1, workdir=tmp_path, extra={"noop": lambda: calls.append(1)})
    assert result["identical_volumes"] is True
    assert {"ictview scan + read_series", "plain pydicom loop", "noop"} <= set(result["times_ms"])
    assert len(calls) == 2  # warm-up + one timed run
    assert "plain / ictview" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # the temporary series is gone
