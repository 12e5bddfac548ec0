"""The GUI's last line against tracebacks: an exception escaping a Qt slot becomes one line
shown by the window in front (a dialog; the status bar of a headless window), and the app
keeps running. Read errors are worded by `ictview.errors.read_error` (the file and the
problem), like at every CLI; anything else is an unexpected error, logged with its traceback.

Installed by the app's entry points (`run_gui`, the test-retest session), not by
`ensure_app`: under pytest-qt, slot exceptions must keep failing tests.
"""

from __future__ import annotations

import logging
import sys

from PySide6 import QtWidgets

from ictview.errors import first_line, read_error

log = logging.getLogger(__name__)


def error_line(exc: BaseException) -> str:
    """The one line the user sees for `exc`."""
    err = read_error(exc)
    if err is not None:
        return str(err)
    log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
    return f"unexpected error: {type(exc).__name__}: {first_line(exc)} (details in the log)"


def report_exception(exc: BaseException) -> str:
    """Tell the user about `exc` through the window in front; returns the line shown."""
    line = error_line(exc)
    host = _host()
    if host is not None:
        host.report_error(line)
    else:
        print(f"ictview: {line}", file=sys.stderr)
    return line


def install() -> None:
    """Route exceptions that escape Qt slots to `report_exception` (idempotent)."""
    if getattr(sys.excepthook, "ictview_hook", False):
        return
    previous = sys.excepthook

    def hook(etype, value, tb) -> None:
        if not isinstance(value, Exception):  # KeyboardInterrupt, SystemExit
            previous(etype, value, tb)
            return
        report_exception(value)

    hook.ictview_hook = True
    sys.excepthook = hook


def _host():
    """The active window if it can report errors, else any visible one that can."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        return None
    active = QtWidgets.QApplication.activeWindow()
    candidates = [active] if active is not None else []
    candidates += [w for w in QtWidgets.QApplication.topLevelWidgets() if w.isVisible()]
    return next((w for w in candidates if callable(getattr(w, "report_error", None))), None)
