"""On a machine without a display the app says so in one line instead of Qt aborting."""

from __future__ import annotations

import os
import subprocess
import sys


def test_open_without_display_is_one_line(tiny_workspace):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    proc = subprocess.run([sys.executable, "-m", "ictview.cli", "open", str(tiny_workspace)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no display" in lines[0] and "--screenshot" in lines[0]
