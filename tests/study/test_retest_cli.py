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

from ._retest_helpers import ADMIN, RATER, RATER_LOGIN
from ._retest_helpers import as_login, clock, ws  # noqa: F401  (fixtures)


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


def test_plan_start_early_override_status(ws, as_login, capsys):
    root = str(ws.root)
    as_login(ADMIN)  # the administrator plans: orders are not printed unless asked
    assert main(["retest", "plan", root, "--name", "cq", "--rater", RATER, "--role", "test",
                 "--labelset", "reference", "--seed", "4", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["repetitions"] == 3 and plan["washout_days"] == 7 and len(plan["exams"]) == 3
    assert plan["admins"] == [ADMIN] and all("exam_order" not in s for s in plan["sessions"])
    as_login(RATER_LOGIN)
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["repetition"] == 1
    assert load_study(ws, "cq").rater_login == RATER_LOGIN  # bound by the rater's first start
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
    # the rater cannot override their own washout, whatever name --by types
    for by in ([], ["--by", ADMIN]):
        assert main(["retest", "start", root, "--study", "cq", "--rater", RATER,
                     "--override-reason", "I am sure", *by]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("administrators (admin-kim), not login 'lee'" in err
                                         or "--by is not accepted" in err)
    assert load_study(ws, "cq").session(2).started_at is None and not events(
        ws, ("retest_override",))
    as_login(ADMIN)
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER,
                 "--override-reason", ""]) == 2
    assert "needs a typed reason" in capsys.readouterr().err
    assert main(["retest", "start", root, "--study", "cq", "--rater", RATER,
                 "--override-reason", "rater on leave from Monday"]) == 0
    assert "washout overridden" in capsys.readouterr().out
    (ev,) = events(ws, ("retest_override",))
    assert (ev["actor"], ev["reason"]) == (ADMIN, "rater on leave from Monday")
    as_login(RATER_LOGIN)
    assert main(["retest", "status", root, "--study", "cq", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert [x["status"] for x in st["sessions"]] == ["ended", "in progress", "planned"]
    assert st["sessions"][0]["exams_done"] == 3 and st["sessions"][1]["overridden"]
    assert st["next"]["state"] == "in progress"
    assert all("exam_order" not in x for x in st["sessions"])
    assert main(["retest", "status", root]) == 0
    text = capsys.readouterr().out
    assert "washout override by admin-kim: rater on leave from Monday" in text


def test_orders_are_printed_only_to_an_administrator_who_asks(ws, as_login, capsys):
    root = str(ws.root)
    as_login(ADMIN)
    assert main(["retest", "plan", root, "--name", "cq", "--rater", RATER, "--role", "test",
                 "--labelset", "reference", "--seed", "4", "--rater-login", RATER_LOGIN]) == 0
    out = capsys.readouterr().out
    orders = [", ".join(s.exam_order) for s in load_study(ws, "cq").sessions]
    assert not any(o in out for o in orders) and "--show-orders" in out
    assert main(["retest", "status", root, "--study", "cq", "--show-orders"]) == 0
    out = capsys.readouterr().out
    assert all(o in out for o in orders)
    as_login(RATER_LOGIN)  # the rater asks: refused in one line
    assert main(["retest", "status", root, "--study", "cq", "--show-orders"]) == 2
    assert "printing the exam orders" in capsys.readouterr().err
    assert main(["retest", "status", root, "--study", "cq"]) == 0
    out = capsys.readouterr().out
    assert not any(o in out for o in orders)
    # planning with --show-orders as someone who will not administer the study: refused
    assert main(["retest", "plan", root, "--name", "cq2", "--rater", RATER, "--role", "test",
                 "--admins", ADMIN, "--show-orders"]) == 2
    assert "not among the study's administrators" in capsys.readouterr().err
    # the rater's login can never be an administrator
    assert main(["retest", "plan", root, "--name", "cq3", "--rater", RATER, "--role", "test",
                 "--rater-login", RATER_LOGIN]) == 2
    assert "cannot be an administrator" in capsys.readouterr().err


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
