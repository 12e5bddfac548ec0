"""The preferences the running app uses, and what follows when they change.

Entry points (`ictview open`, panel screenshots) call `load_settings` once; the
Preferences dialog calls `set_current` (and `save`). Views that draw with a preference
read it here when they build themselves, and those that must follow a change while open
register: objects with a `preferences_changed(prefs)` method (windows, prediction layers),
and legend swatches made by `overlay_swatch` (found by their property and repainted).
Until `load_settings` runs, the defaults are used and nothing is read from disk (tests).
"""

from __future__ import annotations

import weakref
from pathlib import Path

import shiboken6
from PySide6 import QtCore, QtGui, QtWidgets

from ictview.core import overlay as ov
from ictview.core import prefs as P
from ictview.core.labels import BY_VALUE
from ictview.core.window import set_preset_values

_SWATCH_CODE = "ictview_overlay_code"
_state = P.LoadedPreferences(P.Preferences(), Path())
_explicit: Path | None = None
_listeners: weakref.WeakSet = weakref.WeakSet()


def current() -> P.Preferences:
    return _state.prefs


def settings_file() -> Path:
    """The file the dialog saves to (the one loaded, or where it would be)."""
    return _explicit or (_state.path if _state.path != Path() else P.settings_path())


def load_settings(path: str | Path | None = None) -> P.LoadedPreferences:
    """Read the settings file (`path`, else $ICTVIEW_SETTINGS, else the XDG one) and use it.
    A damaged file: the defaults are used and `.problem` says why (the caller shows it)."""
    global _state, _explicit
    _explicit = Path(path) if path else None
    loaded = P.load(P.settings_path(path))
    _state = loaded
    _apply(loaded.prefs)
    return loaded


def set_current(prefs: P.Preferences) -> None:
    global _state
    _state = P.LoadedPreferences(prefs, settings_file(), _state.problem)
    _apply(prefs)


def save() -> Path:
    """Write the current preferences (a damaged file there is kept as `.bad`)."""
    path = settings_file()
    P.save(current(), path, damaged=_state.damaged)
    _state.problem = ""
    return path


def reset() -> None:
    """Defaults again, nothing read (between tests)."""
    global _state, _explicit
    _explicit = None
    _state = P.LoadedPreferences(P.Preferences(), Path())
    _apply(_state.prefs)


def listen(obj) -> None:
    """`obj.preferences_changed(prefs)` runs after every change while `obj` lives."""
    _listeners.add(obj)


def _apply(prefs: P.Preferences) -> None:
    set_preset_values(prefs.preset_values())
    for obj in list(_listeners):
        if isinstance(obj, QtCore.QObject) and not shiboken6.isValid(obj):
            _listeners.discard(obj)  # its window is gone, the Python wrapper not yet
            continue
        obj.preferences_changed(prefs)
    app = QtWidgets.QApplication.instance()
    if app is not None:
        for w in app.allWidgets():
            code = w.property(_SWATCH_CODE)
            if code is not None:
                w.setPixmap(_swatch_pixmap(review_rgb(int(code))))


# ---- what views read --------------------------------------------------------------------


def label_rgb(value: int) -> tuple[int, int, int]:
    """The colour a label class is drawn in (the user's, else core.labels')."""
    return current().label_rgb(BY_VALUE[value].code)


def review_palette() -> str:
    return current().review_palette


def review_rgb(code: int) -> tuple[int, int, int]:
    """The colour of a comparison code (ov.REFERENCE_ONLY, PREDICTION_ONLY, OVERLAP)."""
    return ov.palette_rgb(review_palette())[code]


def review_hex(code: int) -> str:
    """'#rrggbb' of a comparison code (for rich text that names the colours' meanings)."""
    return "#%02x%02x%02x" % review_rgb(code)


def _swatch_pixmap(rgb) -> QtGui.QPixmap:
    pm = QtGui.QPixmap(14, 14)
    pm.fill(QtGui.QColor(*rgb))
    return pm


def overlay_swatch(code: int, text: str) -> QtWidgets.QWidget:
    """A legend entry for a comparison code, repainted when the review palette changes."""
    w = QtWidgets.QWidget()
    lay = QtWidgets.QHBoxLayout(w)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.setSpacing(6)
    sw = QtWidgets.QLabel()
    sw.setObjectName("overlaySwatch")
    sw.setProperty(_SWATCH_CODE, int(code))
    sw.setPixmap(_swatch_pixmap(review_rgb(code)))
    lay.addWidget(sw)
    lay.addWidget(QtWidgets.QLabel(text), 1)
    return w
