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


def test_bench_import_times_each_jobs_value_and_the_plain_loop(tmp_path, capsys):
    from ictview.io.bench_import import bench_import

    result = bench_import(jobs=(1, 2), repeats=1, workdir=tmp_path, studies=3, slices=4,
                          size=32)
    assert set(result["rates"]) == {"ictview import --jobs 1", "ictview import --jobs 2",
                                    "plain pydicom + h5py loop"}
    assert all(r["slices"] == 12 for r in result["rates"].values())
    assert result["same_volumes"] is True and result["plain_failed_series"] == []
    assert "slices/s" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
