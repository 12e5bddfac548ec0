"""ictview-train command line and configs: presets, --help, one-line errors, bench output."""

from __future__ import annotations

import tomllib

import pytest

from ictview.errors import IctviewError
from training.cli import build_parser, main
from training.config import Config, config_from_dict, dumps_toml, load_config

COMMANDS = ("teacher", "pseudolabel", "student", "evaluate", "study", "bench")


def test_paper_preset_has_the_papers_hyperparameters() -> None:
    cfg = load_config("paper")
    assert (cfg.augment.crop, cfg.train.batch_size) == (240, 16)
    assert (cfg.train.epochs, cfg.train.steps_per_epoch) == (600, 240)
    assert (cfg.ranker.top_percent, cfg.ranker.k_hi, cfg.ranker.k_lo) == (10.0, 0.7, 0.3)
    assert cfg.data.mix_labeled == 0.6 and cfg.augment.contrast == "mixed"
    assert cfg.augment.gamma_range == (0.85, 1.1) and cfg.augment.log_gain_range == (0.7, 1.1)
    assert cfg.optim.name == "sgd" and cfg.optim.momentum == 0.9 and cfg.optim.schedule == "poly"
    assert cfg.model.width == 1.0 and cfg.student.init == "teacher"
    assert cfg.preprocess.enabled and cfg.evaluate.n_boot == 1000
    tiny = load_config("tiny")
    assert tiny.model.width < 1 and tiny.train.device == "cpu" and tiny.augment.crop == 64


def test_config_round_trips_through_toml() -> None:
    cfg = load_config("tiny", ["augment.positive_fraction=none", "train.epochs=2"])
    text = dumps_toml(cfg.to_dict())
    again = config_from_dict(tomllib.loads(text))
    assert again.to_dict() == cfg.to_dict()
    assert again.augment.positive_fraction is None and again.train.epochs == 2


@pytest.mark.parametrize("data, needle", [
    ({"train": {"epochs": "many"}}, "train.epochs must be an integer"),
    ({"trian": {}}, "unknown section [trian]"),
    ({"ranker": {"k_lo": 0.9}}, "ranker.k_lo/k_hi"),
    ({"model": {"windows": ["nope"]}}, "unknown window 'nope'"),
    ({"inference": {"exam_score": "mean"}}, "inference.exam_score"),
])
def test_bad_config_is_one_line_naming_file_and_key(data, needle) -> None:
    with pytest.raises(IctviewError) as e:
        config_from_dict(data, "my.toml")
    msg = str(e.value)
    assert msg.startswith("my.toml: ") and needle in msg and "\n" not in msg


def test_default_config_is_valid() -> None:
    assert Config().total_steps() == 600 * 240


@pytest.mark.parametrize("command", COMMANDS)
def test_help_everywhere(command, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--help"])
    assert e.value.code == 0
    assert "usage: ictview-train " + command in capsys.readouterr().out


@pytest.mark.parametrize("argv, code, needle", [
    (["teacher"], 2, "--workspace"),
    (["frobnicate"], 2, "invalid choice"),
    (["teacher", "-w", "/nonexistent/ws"], 1, "workspace folder not found"),
    (["teacher", "-w", ".", "-c", "nosuchpreset"], 1, "no such config"),
    (["teacher", "-w", ".", "--set", "train.epochs"], 1, "section.key=value"),
    (["evaluate", "-w", "/nonexistent/ws", "--run", "x"], 1, "workspace folder not found"),
])
def test_bad_input_is_one_line_and_non_zero(argv, code, needle, capsys) -> None:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == code
    assert len(err.strip().splitlines()) == 1 and needle in err


def test_bad_toml_file(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1\n")
    assert main(["teacher", "-w", str(tmp_path), "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.toml: not valid TOML" in err and len(err.strip().splitlines()) == 1


def test_bench_reports_reference_tuned_ratio_and_end_to_end(tiny_workspace) -> None:
    from training.bench import run_bench

    lines: list[str] = []
    res = run_bench("cpu", seconds=0.01, workspace=tiny_workspace, log=lines.append,
                    sizes=(0.0625, 32, 64, 4), loader_workers=(0, 1), rounds=2)
    assert res["variants"]["reference"]["config"] == "fp32, NCHW, eager"
    for key in ("train_patches_per_s", "infer_slices_per_s"):
        assert res["variants"]["tuned"][key] > 0
        assert res["ratio_tuned_over_reference"][key] == pytest.approx(
            res["variants"]["tuned"][key] / res["variants"]["reference"][key])
    assert res["end_to_end"]["train_patches_per_s"] > 0
    assert res["end_to_end"]["pseudolabel_slices_per_s"] > 0
    e2e = res["end_to_end"]
    assert set(e2e["train_by_loader_workers"]) == {"0", "1"}
    for r in e2e["train_by_loader_workers"].values():
        assert r["patches_per_s"] > 0 and r["ratio"] > 0 and len(r["ratios"]) == 2
        assert r["cpu_ratio"] > 0 and 0 <= r["batch_wait_fraction"] < 1 and r["best_ratio"] > 0
    assert e2e["train_loader_workers"] in (0, 1) and e2e["train_compute_only_patches_per_s"] > 0
    assert any("% of compute only" in line for line in lines)
    assert any("ratio tuned / reference" in line for line in lines)
    made = e2e["batch_making"]
    assert made["wall_ms"]["batched"] > 0 and made["cpu_ms"]["reference"] > 0
    assert any("for the per-sample reference" in line for line in lines)
    assert "fastest here" in res["tuned_choice"]
