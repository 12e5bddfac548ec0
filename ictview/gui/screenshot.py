"""Offscreen rendering shared by every `--screenshot` entry point (main window, panels,
test-retest session): settle the layout, grab the widget to PNG, then tear it down.

Import it after `use_offscreen_platform()` (it imports Qt)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6 import QtCore, QtWidgets

from ictview.errors import IctviewError

SCREENSHOT_SIZE = (1600, 1000)


def grab_png(app, widget: QtWidgets.QWidget, path: Path | str,
             prepare: Callable[[], None] = lambda: None) -> int:
    """Show `widget` at SCREENSHOT_SIZE, run `prepare` once the layouts have settled
    (fit the view, place the cursor...), and save the grab to `path`. Returns 0."""
    widget.resize(*SCREENSHOT_SIZE)
    widget.show()
    # let layouts settle and the view fit the resized canvas before grabbing
    for _ in range(3):
        app.processEvents()
    prepare()
    app.processEvents()
    QtCore.QCoreApplication.sendPostedEvents()
    image = widget.grab().toImage()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path), "PNG"):
        raise IctviewError(f"{path}: could not write the screenshot")
    print(f"screenshot: {path} ({image.width()}x{image.height()})")
    return 0


def dispose(widget) -> None:
    """Shut down and delete a window (None: nothing to close), flushing Qt's deferred
    deletes so that its threads and files are released before the caller returns."""
    if widget is not None:
        widget.shutdown()
        widget.close()
        widget.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
    QtWidgets.QApplication.processEvents()
