"""Fixtures and helpers of the test-retest tests (imported by them, not a conftest, so
other tests in this folder keep their own): the tiny workspace copy and a fixed clock."""

from __future__ import annotations

import numpy as np
import pytest

from ictview.store.arrays import Prediction
from ictview.store.workspace import Workspace
from ictview.study.clock import FixedClock

START = "2026-11-02T09:00:00+00:00"
RATER = "dr-lee"  # the typed display name of the study's labelsets
RATER_LOGIN = "lee"  # the rater's OS login (what the read guard looks at)
ADMIN = "admin-kim"  # the study's administrator's OS login


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def ws(tiny_workspace_copy):
    """The workspace as the rater's login sees it (plan with admins=(ADMIN,))."""
    with Workspace.open(tiny_workspace_copy, login=RATER_LOGIN) as w:
        yield w


@pytest.fixture
def as_login(monkeypatch):
    """as_login("kim"): the OS login every Workspace opened from now on gets (the CLIs)."""
    import ictview.identity

    def use(login: str) -> None:
        monkeypatch.setattr(ictview.identity, "current_login", lambda: login)

    return use


@pytest.fixture
def admin_ws(tiny_workspace_copy):
    """The same workspace opened by the study's administrator."""
    with Workspace.open(tiny_workspace_copy, login=ADMIN) as w:
        yield w


def hemorrhage(labels: np.ndarray) -> np.ndarray:
    return (labels > 0) & (labels != 255)


def write_run(ws: Workspace, run: str, exams: list[str], quality: float, seed: int) -> None:
    """A hand-made model run: noise plus `quality` x the reference lesion (float16)."""
    ws.create_run(run, "teacher", {"hand_made": True, "quality": quality})
    for i, exam in enumerate(exams):
        truth = ws.load_labels("reference", exam)
        e = ws.exam(exam)
        if truth is None:
            truth = np.zeros((e.n_slices, e.rows, e.cols), np.uint8)
        rng = np.random.default_rng([seed, i])
        prob = rng.normal(0.2, 0.15 + 0.1 * (1 - quality), truth.shape)
        prob += quality * 0.7 * hemorrhage(truth)
        prob = np.clip(prob, 0, 1).astype(np.float16)
        ws.write_prediction(run, exam, Prediction(
            prob, prob.reshape(len(prob), -1).max(1).astype(np.float32), float(prob.max())))
