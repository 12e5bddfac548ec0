"""Child process of the crash test (not a test module).

    python _paint_child.py WS N_DONE BLOCK_AFTER

Opens exam EX-1 of WS for rater 'a' in labelset 'rater-a', finishes N_DONE
strokes (printing "done i" after each end_stroke), starts stroke N_DONE, prints
"mid" and waits to be killed. BLOCK_AFTER >= 0 makes label-file saves after the
first BLOCK_AFTER strokes (each flushed) hang (fault injection: the process
dies before the background save of the later strokes, so only the journal has
them); -1 saves normally.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np

EXAM, LABELSET, RATER = "EX-1", "rater-a", "a"


def do_stroke(model, i: int) -> None:
    """Stroke i of a fixed script: drags of varying class, size, mode, some erasing."""
    rng = np.random.default_rng(1000 + i)
    nz, ny, nx = model.labels.shape
    model.label_value = 1 + i % 5
    model.brush_radius_px = float(rng.uniform(1, 5))
    model.hu_limited = i % 3 == 1
    model.protect_others = i % 4 == 2
    model.begin_stroke(erase=i % 6 == 5)
    z = int(rng.integers(nz))
    for _ in range(int(rng.integers(2, 8))):
        model.paint_to(z, rng.uniform(0, ny - 1), rng.uniform(0, nx - 1))


def main(ws: str, n_done: int, block_after: int) -> None:
    from ictview.core.annotation import AnnotationModel
    from ictview.store.workspace import Workspace

    hang = threading.Event()
    if block_after >= 0:
        real_save = Workspace.save_labels

        def save_or_hang(self, *args, **kwargs):
            if hang.is_set():
                threading.Event().wait()  # the saver thread never finishes this save
            return real_save(self, *args, **kwargs)

        Workspace.save_labels = save_or_hang
    model = AnnotationModel.open(ws, EXAM, LABELSET, RATER)
    for i in range(n_done):
        if i == block_after:
            hang.set()
        do_stroke(model, i)
        model.end_stroke()
        if block_after < 0 or i < block_after:
            model.flush(10)  # saved one by one: the file holds exactly these strokes
        print(f"done {i}", flush=True)
    do_stroke(model, n_done)
    print("mid", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
