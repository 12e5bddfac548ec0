"""Shared test set-up: offscreen Qt before any Qt import, one torch thread."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

# never the user's own preferences file, in this process or the ictview children it starts
_SETTINGS_DIR = tempfile.mkdtemp(prefix="ictview-settings-")
os.environ["ICTVIEW_SETTINGS"] = os.path.join(_SETTINGS_DIR, "settings.json")
atexit.register(shutil.rmtree, _SETTINGS_DIR, True)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def synth_tiny(tmp_path_factory) -> Path:
    """The `tiny` synthetic study, generated once per test session (treat as read-only)."""
    from ictview.synth import generate

    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate("tiny", out, seed=0)
    return out


@pytest.fixture(scope="session")
def tiny_workspace(synth_tiny, tmp_path_factory) -> Path:
    """A workspace with all four tiny sites imported (treat as read-only; copy to modify)."""
    from ictview.io.synthetic_import import import_synthetic
    from ictview.store.workspace import Workspace

    root = tmp_path_factory.mktemp("ws") / "tiny"
    with Workspace.create(root) as ws:
        import_synthetic(ws, synth_tiny)
    return root


@pytest.fixture
def tiny_workspace_copy(tiny_workspace, tmp_path) -> Path:
    dst = tmp_path / "ws"
    shutil.copytree(tiny_workspace, dst)
    return dst
