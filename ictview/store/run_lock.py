"""One process at a time trains or predicts into a run: WS/runs/<run>/.lock.

The lock is a file created with O_CREAT|O_EXCL (atomic on local disks and on NFS v3+,
unlike flock, which DESIGN.md rules out for the training path) holding the owner's
host, pid and process start time. A lock whose process is gone is stale and is taken
over, so a killed run (kill -9, power loss) never blocks the next one: on the same
host that is decided by asking the kernel (the pid exists and started when the lock
says; a reused pid does not match). A lock held from another host cannot be checked
from here: the refusal names the host and pid and the file to delete if that process
is gone.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from ictview.errors import IctviewError

LOCK_NAME = ".lock"
# a lock file with no readable owner is one being written right now, or one whose
# writer died between creating and filling it (microseconds): stale after this long
UNREADABLE_STALE_S = 10.0


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    now = _start_time(pid)
    return started is None or now is None or now == started


class RunLock:
    """`with RunLock(run_dir, run):` held for the block; IctviewError when in use."""

    def __init__(self, run_dir: Path, run: str, what: str = ""):
        self.path = Path(run_dir) / LOCK_NAME
        self.run = run
        self.what = what or " ".join(Path(a).name if i == 0 else a
                                     for i, a in enumerate(sys.argv[:3]))
        self.token = secrets.token_hex(8)
        self.held = False

    def _owner(self) -> dict | None:
        try:
            owner = json.loads(self.path.read_text())
            return owner if isinstance(owner, dict) and "pid" in owner else None
        except (OSError, ValueError):
            return None

    def _stale(self, owner: dict | None) -> bool:
        if owner is None:
            try:
                return time.time() - self.path.stat().st_mtime > UNREADABLE_STALE_S
            except FileNotFoundError:
                return True
        if owner.get("host") != socket.gethostname():
            return False  # cannot know: refuse (the message says what to do)
        return not _alive(int(owner["pid"]), owner.get("started"))

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _start_time(os.getpid()),
              "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "what": self.what,
              "token": self.token}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    judged = os.stat(self.path).st_ino
                except FileNotFoundError:
                    continue
                owner = self._owner()
                if not self._stale(owner):
                    raise IctviewError(self._refusal(owner)) from None
                self._remove_stale(judged)
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump(me, fh)
                fh.flush()
                os.fsync(fh.fileno())
            self.held = True
            return self
        raise IctviewError(f"{self.path}: could not take the run lock (contended)")

    def _remove_stale(self, judged_inode: int) -> None:
        """Remove the lock file judged stale, and only that one: of two processes that
        both found it stale, the second may find the first one's fresh lock in its place,
        which it puts back."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{self.token}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        if os.stat(aside).st_ino != judged_inode:
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass  # a third process locked meanwhile; the one moved aside loses its lock
        aside.unlink(missing_ok=True)

    def _refusal(self, owner: dict | None) -> str:
        if owner is None:
            return f"run '{self.run}' is being locked by another process right now ({self.path})"
        where = f"pid {owner['pid']} on {owner.get('host')}"
        msg = (f"run '{self.run}' is in use by {where} since {owner.get('since')} "
               f"({owner.get('what') or 'ictview'}): wait for it to finish or use another --run")
        if owner.get("host") != socket.gethostname():
            msg += f"; if that process is gone, delete {self.path}"
        return msg

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        owner = self._owner()
        if owner is not None and owner.get("token") == self.token:
            self.path.unlink(missing_ok=True)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
