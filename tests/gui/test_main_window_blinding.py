"""Outside a session too, the main window blinds the rater's OS login to the study's
exams: whatever rater name is typed (none, another case, another name), it lists no
repetition labelset and shows the CT alone. The login decides, through the read guard."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.store.workspace import Workspace
from ictview.study.retest_plan import ExamSelection, plan_study

from .conftest import RATER

ADMIN = "admin-kim"


def _plan(root, exams, rater_login=None):
    with Workspace.open(root, login=ADMIN) as ws:
        plan_study(ws, "tr", RATER, ExamSelection(exams=tuple(exams)), seed=3,
                   admins=(ADMIN,), rater_login=rater_login)


@pytest.mark.parametrize("typed", ["", " Tester ", "someone-else"])
def test_study_exams_show_the_ct_only_whatever_name_is_typed(window, typed):
    ws_root = window.ws.root
    exams = window.ws.labelset_exams("retest-1")
    # the window's login is not known as the rater yet: deny by default
    _plan(ws_root, exams)
    window.close_exam()
    window.set_rater(typed)
    window.set_labelset("reference")
    listed = [window.labelset_combo.itemData(i) for i in range(window.labelset_combo.count())]
    assert "reference" in listed and not any(n.startswith("retest-tr-") for n in listed)

    for labelset in ("reference", "retest-1"):
        window.set_labelset(labelset)
        assert window.open_exam(exams[0])
        model = window.model
        assert model.read_only and not model.labels.any()
        assert f"hidden from login '{window.ws.login}'" in window.last_error
        window.close_exam()
    with Workspace.open(ws_root, login=ADMIN) as ws:
        assert ws.load_labels("reference", exams[0]).any()  # there was something to hide

    window.set_labelset("reference")
    other = next(e.name for e in window.ws.exams(site="atlantis"))
    assert window.open_exam(other)
    assert window.model.labels is not None  # exams outside the study are unaffected


def test_another_login_sees_the_reference_but_no_repetition(window):
    ws_root = window.ws.root
    exams = window.ws.labelset_exams("retest-1")
    _plan(ws_root, exams, rater_login="lee")  # the window's login is someone else
    with Workspace.open(ws_root, login="lee") as ws:
        from ictview.study.retest_session import RetestSession

        s = RetestSession.start(ws, "tr", RATER)
        current = s.current()
        e = ws.exam(current)
        ws.save_labels("retest-tr-1", current, np.ones((e.n_slices, e.rows, e.cols), np.uint8),
                       RATER)
    window.close_exam()
    window.set_labelset("reference")
    listed = [window.labelset_combo.itemData(i) for i in range(window.labelset_combo.count())]
    assert not any(n.startswith("retest-tr-") for n in listed)
    assert window.open_exam(exams[0])
    assert window.model.labels.any()  # the reference of a study exam: not hidden from others
    window.close_exam()
    window.set_labelset("retest-tr-1")  # typed in by hand: still refused
    assert window.open_exam(current)
    assert not window.model.labels.any() and "only its administrators" in window.last_error


def test_the_blinding_notice_is_a_sentence_shown_once_per_exam(window):
    """Switching labelsets on a blinded exam: the status bar says it each time, the warning
    box comes once per exam and session (counted headless: dialogs_shown)."""
    exams = window.ws.labelset_exams("retest-1")
    _plan(window.ws.root, exams)
    window.close_exam()
    window.set_labelset("reference")
    before = getattr(window, "dialogs_shown", 0)
    for labelset in ("reference", "retest-1", "reference", window.own_labelset):
        window.set_labelset(labelset)
        assert window.open_exam(exams[0])
        assert window.last_error[0].isupper() and "hidden from login" in window.last_error
        assert "hidden from login" in window.status.currentMessage()
    assert window.dialogs_shown == before + 1
    window.close_exam()
    assert window.open_exam(exams[1])  # another blinded exam: told once more
    assert window.dialogs_shown == before + 2
