"""Verifies the opened exam's files against the catalog's checksums, off the GUI thread.

Opening stays as fast as before (hashing a 40-slice 512x512 volume takes tens of ms,
but on a worker thread it costs the rater nothing); the window says so when the
volume or the shown label file is not the file ictview wrote.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from PySide6 import QtCore

from ictview.errors import IctviewError
from ictview.store.workspace import Workspace


class ExamVerifier(QtCore.QObject):
    # (exam, problems): one line per file that failed; empty when every file verified
    verified = QtCore.Signal(str, object)

    def __init__(self, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self._thread: threading.Thread | None = None
        self.results: dict[str, list[str]] = {}

    def start(self, root: Path, exam: str, labelset: str | None) -> None:
        """labelset None: the labels were not shown (blinded), so they are not read either."""
        self.join()

        def work() -> None:
            problems: list[str] = []
            try:
                with Workspace.open(root) as ws:  # sqlite: one connection per thread
                    checks = [lambda: ws.verify_volume(exam)]
                    if labelset:
                        checks.append(lambda: ws.verify_labels(labelset, exam))
                    for check in checks:
                        try:
                            check()
                        except IctviewError as e:
                            problems.append(str(e))
            except (IctviewError, sqlite3.Error, OSError) as e:
                problems.append(f"{root}: {e}")
            self.results[exam] = problems
            self.verified.emit(exam, problems)

        self._thread = threading.Thread(target=work, name=f"verify-{exam}", daemon=True)
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
