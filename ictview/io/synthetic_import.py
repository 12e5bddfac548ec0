"""Import the four sites written by `ictview synth` using its manifest.json."""

from __future__ import annotations

import json
from pathlib import Path

from ictview.errors import IctviewError
from ictview.io.importers import (ImportOptions, ImportReport, MaskSource, Progress, import_source,
                                  worker_pool)
from ictview.store.workspace import Workspace

REFERENCE_LABELSET = "reference"
RETEST_RATER = "rater-1"


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise IctviewError(f"{path}: not found (is {folder} an `ictview synth` output?)") from None
    except (OSError, ValueError) as e:
        raise IctviewError(f"{path}: unreadable manifest ({e})") from None
    if manifest.get("generator") != "ictview-synth" or "sites" not in manifest:
        raise IctviewError(f"{path}: not an ictview-synth manifest")
    return manifest


def site_options(folder: Path, site: str, entry: dict) -> tuple[Path, ImportOptions]:
    """The import of one synthetic site, as `ictview import` options."""
    folder = Path(folder)
    opts = ImportOptions(site=site, role=entry["role"])
    if entry.get("masks"):
        opts.masks.append(MaskSource(REFERENCE_LABELSET, folder / entry["masks"], "reference"))
    for i, rel in enumerate(entry.get("retest", []), start=1):
        opts.masks.append(MaskSource(f"retest-{i}", folder / rel, "retest", RETEST_RATER))
    if entry.get("labels_csv"):
        opts.rsna_labels = folder / entry["labels_csv"]
    if entry.get("reads_csv"):
        opts.cq500_reads = folder / entry["reads_csv"]
    return folder / entry["dicom"], opts


def import_synthetic(
    ws: Workspace, folder: Path, progress_for_site=None, jobs: int = 1
) -> dict[str, ImportReport]:
    """Import every site of a synth output; `progress_for_site(site)` returns a Progress;
    `jobs` as import_source's."""
    manifest = read_manifest(folder)
    reports = {}
    pool = worker_pool(jobs) if jobs > 1 else None  # one set of workers for every site
    try:
        for site, entry in manifest["sites"].items():
            source, opts = site_options(folder, site, entry)
            progress: Progress | None = progress_for_site(site) if progress_for_site else None
            reports[site] = import_source(ws, [source], opts, progress, jobs=jobs, pool=pool)
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
    return reports
