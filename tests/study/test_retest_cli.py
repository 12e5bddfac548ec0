"""`ictview retest plan|start|status|analyze` (through retest_cli.main, the same parser
the `ictview` command gets from add_retest_parser)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from ictview.study.clock import FixedClock
from ictview.study.retest_cli import main
from ictview.study.retest_plan import events, load_study
from ictview.study.retest_session import RetestSession

from ._retest_helpers import RATER
from ._retest_helpers import clock, ws  # noqa: F401  (fixtures)


def test_help_lists_the_subcommands(capsys):
    with pytest.raises(SystemExit) as ex:
        main(["retest", "--help"])
    assert ex.value.code == 0
    out = capsys.readouterr().out
    for sub in ("plan", "start", "status", "analyze", "--override-reason"):
        assert sub in out
    for sub in ("plan", "start", "status", "analyze"):
        with pytest.raises(SystemExit):
            main(["retest", sub, "--help"])
        assert "usage: ictview retest " + sub in capsys.readouterr().out


def test_plan_start_early_override_status(ws, capsys):
    root = str(ws.root)
    assert main(["retest", "plan", root, "--name", "cq", "--rater", RATER, "--role", "test",
                 "--labelset", "reference", "--seed", "4", "--by", "admin", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["repetitions"] == 3 and plan["washout_days"] == 7 and len(plan["exams"]) == 3
    assert len({tuple(s["exam_order"]) for s in plan["sessions"]}) == 3
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repetition"] == 1
    # the rater does repetition 1 (its end time is now: the washout runs from here)
    s = RetestSession.resume(ws, "cq", RATER, clock=FixedClock(datetime.now(timezone.utc)))
    while s.current():
        s.mark_done()
    s.finish()
    # too early from the CLI: one line on stderr with the opening time, non-zero exit
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "repetition 2 of 3 opens on " in err
    opens = (load_study(ws, "cq").session(1).ended_at + load_study(ws, "cq").washout)
    assert opens.strftime("%Y-%m-%d") in err
    assert load_study(ws, "cq").session(2).started_at is None
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER,
                 "--override-reason", "", "--by", "admin"]) == 2
    assert "needs a typed reason" in capsys.readouterr().err
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER,
                 "--override-reason", "rater on leave from Monday", "--by", "admin-kim"]) == 0
    assert "washout overridden" in capsys.readouterr().out
    (ev,) = events(ws, ("retest_override",))
    assert (ev["actor"], ev["reason"]) == ("admin-kim", "rater on leave from Monday")
    assert main(["retest", "status", root, "--study", "cq", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert [x["status"] for x in st["sessions"]] == ["ended", "in progress", "planned"]
    assert st["sessions"][0]["exams_done"] == 3 and st["sessions"][1]["overridden"]
    assert st["next"]["state"] == "in progress"
    assert main(["retest", "status", root]) == 0
    text = capsys.readouterr().out
    assert "washout override by admin-kim: rater on leave from Monday" in text


def test_bad_input_is_one_line(ws, tmp_path, capsys):
    root = str(ws.root)
    assert main(["retest", "plan", root, "--name", "x", "--rater", RATER]) == 2
    assert "choose the exams" in capsys.readouterr().err
    lst = tmp_path / "exams.txt"
    lst.write_text("# the subset\nCQ500-CT-2\nCQ500-CT-9\n")
    assert main(["retest", "plan", root, "--name", "x", "--rater", RATER,
                 "--exams-file", str(lst)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no exam named 'CQ500-CT-9'" in err
    assert main(["retest", "status", str(tmp_path / "nope")]) == 2
    assert main(["retest", "start", root, "--study", "nope", "--rater", RATER]) == 2
    assert "no test-retest study named 'nope'" in capsys.readouterr().err
