"""QApplication set-up: one place that decides the Qt binding, pyqtgraph options,
the palette, the stylesheet and where settings live.

PySide6 is imported before pyqtgraph so pyqtgraph never has to guess the binding.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6 import QtCore, QtGui, QtWidgets  # noqa: I001  (must precede pyqtgraph)

import pyqtgraph as pg

from ictview import resources

pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, useNumba=False)

ORG = "ictview"
APP = "ictview"
STYLESHEET = resources.STYLES / "ictview.qss"

# the palette the stylesheet is written against (dark, low-glare reading-room colours)
COLORS = {
    "window": "#1b1e22",
    "base": "#121417",
    "alt_base": "#181b1f",
    "panel": "#22262b",
    "text": "#d7dce2",
    "muted": "#8a939d",
    "accent": "#3d8fd6",
    "highlight": "#2b5d8a",
    "border": "#2f353c",
    "viewer": "#000000",
}


def settings() -> QtCore.QSettings:
    """The app's settings (INI: tests redirect it with QSettings.setPath)."""
    return QtCore.QSettings(
        QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope, ORG, APP
    )


def use_offscreen_platform() -> None:
    """Render without a display (screenshots, benchmarks); only before the app exists."""
    if QtWidgets.QApplication.instance() is None:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


# Qt messages that say nothing to a user: the offscreen / minimal platform plugins print
# this one (QPlatformWindow's default) whenever a top-level window with a minimum or
# maximum size is shown, so every `--screenshot` printed it twice. Exact text only.
QUIET_MESSAGES = frozenset({"This plugin does not support propagateSizeHints()"})
_previous_handler = None


def _message_handler(mode, context, message: str) -> None:
    if message in QUIET_MESSAGES:
        return
    if _previous_handler is not None:
        _previous_handler(mode, context, message)
    else:  # Qt's default: the formatted message on stderr
        print(QtCore.qFormatLogMessage(mode, context, message), file=sys.stderr, flush=True)


def install_message_filter() -> None:
    """Drop QUIET_MESSAGES and pass every other Qt message on unchanged (once)."""
    global _previous_handler
    if getattr(install_message_filter, "done", False):
        return
    _previous_handler = QtCore.qInstallMessageHandler(_message_handler)
    install_message_filter.done = True


def _palette() -> QtGui.QPalette:
    c = {k: QtGui.QColor(v) for k, v in COLORS.items()}
    p = QtGui.QPalette()
    R = QtGui.QPalette.ColorRole
    p.setColor(R.Window, c["window"])
    p.setColor(R.WindowText, c["text"])
    p.setColor(R.Base, c["base"])
    p.setColor(R.AlternateBase, c["alt_base"])
    p.setColor(R.ToolTipBase, c["panel"])
    p.setColor(R.ToolTipText, c["text"])
    p.setColor(R.Text, c["text"])
    p.setColor(R.Button, c["panel"])
    p.setColor(R.ButtonText, c["text"])
    p.setColor(R.BrightText, QtGui.QColor("#ffffff"))
    p.setColor(R.Highlight, c["highlight"])
    p.setColor(R.HighlightedText, QtGui.QColor("#ffffff"))
    p.setColor(R.Link, c["accent"])
    p.setColor(R.PlaceholderText, c["muted"])
    disabled = QtGui.QPalette.ColorGroup.Disabled
    for role in (R.WindowText, R.Text, R.ButtonText):
        p.setColor(disabled, role, QtGui.QColor("#5c636b"))
    return p


def ensure_app(argv: list[str] | None = None) -> QtWidgets.QApplication:
    """The running QApplication (pytest-qt's, or a new one), styled once."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        QtGui.QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
            QtCore.Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QtWidgets.QApplication(argv if argv is not None else sys.argv[:1])
    if app.property("ictview_styled"):
        return app
    install_message_filter()
    app.setOrganizationName(ORG)
    app.setApplicationName(APP)
    app.setApplicationDisplayName("ictview")
    app.setStyle("Fusion")
    app.setPalette(_palette())
    font = app.font()
    if font.pointSizeF() < 10:
        font.setPointSizeF(10)
    app.setFont(font)
    if STYLESHEET.is_file():
        # url() in a stylesheet is relative to the working directory: make it absolute
        qss = STYLESHEET.read_text(encoding="utf-8")
        app.setStyleSheet(qss.replace("@STYLES@", STYLESHEET.parent.as_posix()))
    app.setProperty("ictview_styled", True)
    return app
