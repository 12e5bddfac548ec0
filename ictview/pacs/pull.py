"""`ictview pacs pull`: retrieve studies into the workspace's staging folder, then import them.

Each received instance is written to `WS/pacs/incoming/<study>/<series>/<SOP>.dcm` by
atomic rename, so a file there is always whole: a pull that is interrupted (cancel,
Ctrl-C, server gone, kill -9) keeps what it received, and running it again fetches only
the missing instances. A study is imported only once every instance of every CT series
has arrived, through `ictview.io.importers.import_source`, the same reader and the same
all-or-nothing commit as `ictview import`; the staged files stay as the exam's source
folder (DICOM SEG export needs them). With `seg_labelset`, the study's SEG series that
reference the imported series are read back into that labelset.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ictview.errors import IctviewError
from ictview.pacs.records import Cancelled, PacsClient, SeriesInfo
from ictview.store.workspace import Workspace, bounded_name

Progress = Callable[[int, int, str], None]
STAGING = Path("pacs") / "incoming"
SEG_RATER = "pacs"


class PullCancelled(IctviewError):
    """The user cancelled; what arrived is kept for the next pull."""


@dataclass
class StudyPull:
    study_uid: str
    status: str = "pending"  # imported | already present | failed | cancelled
    exam: str = ""
    fetched: int = 0  # instances received by this pull
    already_had: int = 0  # instances found in staging from an earlier pull
    slices: int = 0  # slices of the imported exam
    labels: str = ""  # labelset the study's SEG was read into
    reason: str = ""  # one line: why it failed, what to do


@dataclass
class PullReport:
    studies: list[StudyPull] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def fetched(self) -> int:
        return sum(s.fetched for s in self.studies)

    @property
    def failed(self) -> list[StudyPull]:
        return [s for s in self.studies if s.status in ("failed", "cancelled")]

    def to_dict(self) -> dict:
        return {"studies": [asdict(s) for s in self.studies], "seconds": round(self.seconds, 3),
                "fetched": self.fetched}


def staging_dir(ws: Workspace, study_uid: str, series_uid: str | None = None) -> Path:
    d = ws.root / STAGING / bounded_name(study_uid)
    return d / bounded_name(series_uid) if series_uid else d


def _have(folder: Path) -> set[str]:
    if not folder.is_dir():
        return set()
    return {p.name[:-4] for p in folder.iterdir() if p.name.endswith(".dcm")}


def _writer(folder: Path, counter: list[int], on_instance: Callable[[], None]):
    folder.mkdir(parents=True, exist_ok=True)

    def sink(sop_uid: str, data: bytes) -> None:
        final = folder / f"{bounded_name(sop_uid)}.dcm"
        tmp = folder / f".{bounded_name(sop_uid)}.part"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)  # a .dcm in staging is always a whole instance
        counter[0] += 1
        on_instance()

    return sink


def pull_studies(
    ws: Workspace,
    client: PacsClient,
    study_uids: list[str],
    site: str,
    role: str,
    *,
    seg_labelset: str | None = None,
    min_thickness_mm: float = 2.0,
    progress: Progress | None = None,
    cancelled: Cancelled | None = None,
) -> PullReport:
    """Pull each study; one study's failure is reported and does not stop the others."""
    from ictview.io.importers import ImportOptions

    ws.ensure_site(site, role)  # a wrong role fails before anything is fetched
    opts = ImportOptions(site=site, role=role, min_thickness_mm=min_thickness_mm)
    report = PullReport()
    t0 = time.monotonic()
    for uid in study_uids:
        item = StudyPull(uid)
        report.studies.append(item)
        try:
            _pull_one(ws, client, item, opts, seg_labelset, progress, cancelled)
        except PullCancelled as e:
            item.status, item.reason = "cancelled", str(e)
            break
        except IctviewError as e:
            item.status, item.reason = "failed", str(e)
    report.seconds = time.monotonic() - t0
    return report


def _series_plan(client: PacsClient, uid: str) -> tuple[list[SeriesInfo], list[SeriesInfo]]:
    series = client.find_series(uid)
    if not series:
        raise IctviewError(f"study {uid}: not found on the server (check the Study Instance UID "
                           "with `ictview pacs query`)")
    ct = [s for s in series if s.modality.upper() == "CT"]
    if not ct:
        mods = ", ".join(sorted({s.modality or "?" for s in series}))
        raise IctviewError(f"study {uid}: no CT series (modalities: {mods}); ictview reads "
                           "head CT only, nothing was fetched")
    segs = [s for s in series if s.modality.upper() == "SEG"]
    return ct, segs


def _fetch(ws, client, item, series: list[SeriesInfo], progress, cancelled) -> None:
    """Retrieve the instances of `series` not yet staged; PullCancelled or IctviewError when
    not all of them are here afterwards (what did arrive stays staged)."""
    plan = []
    for s in series:
        folder = staging_dir(ws, item.study_uid, s.series_uid)
        remote = client.find_instances(item.study_uid, s.series_uid)
        have = _have(folder)
        missing = [u for u in remote if bounded_name(u) not in have]
        item.already_had += len(remote) - len(missing)
        plan.append((s, folder, remote, missing))
    total = sum(len(m) for *_, m in plan)
    counter = [0]

    def tick() -> None:
        if progress:
            progress(counter[0], total, f"retrieve {item.study_uid[-12:]}")

    if progress:
        progress(0, total, "retrieve")
    for s, folder, _remote, missing in plan:
        if cancelled and cancelled():
            break
        if missing:
            client.retrieve(item.study_uid, s.series_uid, missing,
                            _writer(folder, counter, tick), cancelled,
                            whole=len(missing) == len(_remote))
    item.fetched += counter[0]
    lacking = sum(len([u for u in r if bounded_name(u) not in _have(f)]) for _s, f, r, _m in plan)
    if lacking:
        got = sum(len(r) for _s, _f, r, _m in plan) - lacking
        what = (f"{got} of {got + lacking} instances of study {item.study_uid} are staged; "
                "nothing imported; run the same pull again to fetch the other "
                f"{lacking}")
        if cancelled and cancelled():
            raise PullCancelled(f"cancelled: {what}")
        raise IctviewError(f"partial retrieve: {what}")


def _pull_one(ws, client, item: StudyPull, opts, seg_labelset, progress, cancelled) -> None:
    from ictview.io.importers import import_source

    ct, segs = _series_plan(client, item.study_uid)
    existing = ws.find_study(item.study_uid)
    if existing:  # an exam already in the workspace is never fetched again
        item.exam, item.status = existing, "already present"
    else:
        _fetch(ws, client, item, ct, progress, cancelled)
        sources = [staging_dir(ws, item.study_uid, s.series_uid) for s in ct]
        result = import_source(ws, sources, opts, progress)
        if result.failed:
            raise IctviewError(f"import of study {item.study_uid} failed: {result.failed[0]}")
        names = result.imported + result.already_present
        if not names:
            why = "; ".join(result.excluded_series[:2]) or "see ictview import"
            raise IctviewError(f"study {item.study_uid}: no CT series to interpret ({why})")
        item.exam = names[0]
        item.status = "imported" if result.imported else "already present"
    item.slices = ws.exam(item.exam).n_slices
    if seg_labelset and segs:
        _fetch(ws, client, item, segs, progress, cancelled)
        if _read_segs(ws, item, segs, seg_labelset):
            item.labels = seg_labelset


def _read_segs(ws: Workspace, item: StudyPull, segs: list[SeriesInfo], labelset: str) -> bool:
    """Save the newest SEG that references the exam's series into `labelset`."""
    import pydicom

    from ictview.io.export import read_dicom_seg

    exam = ws.exam(item.exam)
    candidates = []
    for s in segs:
        for path in sorted(staging_dir(ws, item.study_uid, s.series_uid).glob("*.dcm")):
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            refs = {str(r.SeriesInstanceUID) for r in getattr(ds, "ReferencedSeriesSequence", [])}
            if exam.series_uid in refs:
                when = f"{getattr(ds, 'ContentDate', '')}{getattr(ds, 'ContentTime', '')}"
                candidates.append((when, str(path)))
    if not candidates:
        return False
    sops = ws.read_volume(item.exam).sop_uids
    try:
        labels = read_dicom_seg(Path(max(candidates)[1]), list(sops))
    except Exception as e:  # noqa: BLE001 - a SEG we cannot read is one line, the exam stays
        raise IctviewError(f"{max(candidates)[1]}: DICOM SEG unreadable "
                           f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"
                           ) from None
    ws.ensure_labelset(labelset, "reference")
    ws.save_labels(labelset, item.exam, labels, rater=SEG_RATER)
    return True
