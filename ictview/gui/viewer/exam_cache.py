"""The viewer's cache of exam volumes: LRU, bounded in bytes (QSettings `exam_cache_mb`,
default 1024 MB; 0 turns it off), so stepping back and forth between exams does not
reread them, and a long session does not grow without bound.

Volumes are keyed by workspace, exam and the catalog's checksum of the volume file (a
re-imported exam is a different entry) and kept read-only (nothing may edit a shared CT).
"""

from __future__ import annotations

from ictview.core.byte_lru import ByteLRU

DEFAULT_MB = 1024
_cache: ByteLRU | None = None


def cache_bytes() -> int:
    from ictview.gui.app import settings

    try:
        mb = float(settings().value("exam_cache_mb", DEFAULT_MB))
    except (TypeError, ValueError):
        mb = DEFAULT_MB
    return int(max(mb, 0.0) * 1024 * 1024)


def exam_cache() -> ByteLRU:
    global _cache
    if _cache is None:
        _cache = ByteLRU(cache_bytes(), size_of=lambda v: int(v.hu.nbytes))
    return _cache


def read_volume(ws, exam: str):
    """The exam's StoredVolume, from the cache when it holds the same file."""
    row = ws.con.execute("SELECT volume_sha1 FROM exams WHERE name=?", (exam,)).fetchone()
    key = (str(ws.root.resolve()), exam, row[0] if row else "")
    cache = exam_cache()
    vol = cache.get(key)
    if vol is None:
        vol = ws.read_volume(exam)
        vol.hu.setflags(write=False)
        cache.put(key, vol)
    return vol


def show_first_slice(win, exam) -> None:
    """Paint the middle CT slice of `exam` (a catalog Exam) in the window's axial view while
    the rest loads: read alone from the volume file unless the volume is cached."""
    from ictview.store.arrays import read_slice

    ws = win.ws
    k = exam.n_slices // 2
    try:
        row = ws.con.execute("SELECT volume_sha1 FROM exams WHERE name=?", (exam.name,)).fetchone()
        vol = exam_cache().get((str(ws.root.resolve()), exam.name, row[0] if row else ""))
        ct = vol.hu[k] if vol is not None else read_slice(ws.volume_path(exam.name), k)
    except (OSError, ValueError, KeyError):
        return  # the loader reports what is wrong with the file
    win.slice_view.show_preview(ct, exam.spacing[1:], f"Loading {exam.name}…")
