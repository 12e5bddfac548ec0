"""Background work for the panels (superqt's generator-worker pattern, without superqt).

`Worker(fn, *args)` runs fn on a daemon thread. When fn is a generator function, each
`yield value` is a progress report delivered on the GUI thread (`progressed`) and a cancel
point; its return value (or a plain function's) arrives as `done`, an exception as `failed`
(one line). Signals are emitted from the worker thread to a QObject living on the GUI
thread, so Qt queues them. `wait()` joins the thread (panels call it on close).
"""

from __future__ import annotations

import inspect
import logging
import threading

from PySide6 import QtCore

from ictview.errors import IctviewError

log = logging.getLogger(__name__)


class Cancelled(Exception):
    pass


class Worker(QtCore.QObject):
    progressed = QtCore.Signal(object)
    done = QtCore.Signal(object)
    failed = QtCore.Signal(str)

    def __init__(self, fn, *args, name: str = "ictview-worker", **kwargs):
        super().__init__()
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.finished = False

    def start(self) -> Worker:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def running(self) -> bool:
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread.is_alive():
            self._thread.join(timeout)
        # deliver what the thread queued before it ended (tests, closing panels)
        QtCore.QCoreApplication.sendPostedEvents(self)

    def _run(self) -> None:
        try:
            if inspect.isgeneratorfunction(self._fn):
                gen = self._fn(*self._args, **self._kwargs)
                try:
                    while True:
                        value = next(gen)
                        if self._cancel.is_set():
                            gen.close()
                            raise Cancelled()
                        self.progressed.emit(value)
                except StopIteration as stop:
                    result = stop.value
            else:
                result = self._fn(*self._args, **self._kwargs)
        except Cancelled:
            self.finished = True
            return
        except (IctviewError, OSError, ValueError, KeyError, RuntimeError) as e:
            self.finished = True
            self.failed.emit(str(e).splitlines()[0] if str(e) else type(e).__name__)
            return
        except Exception as e:  # noqa: BLE001 - a worker must never take the GUI down
            log.exception("worker %s failed", self._thread.name)
            self.finished = True
            self.failed.emit(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
            return
        self.finished = True
        self.done.emit(result)
