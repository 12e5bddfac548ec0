"""What a PACS answers, the same for DICOMweb and DIMSE, and the client interface."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Protocol

import pydicom

# Called with each received instance: (SOPInstanceUID, the instance as DICOM Part 10 bytes)
InstanceSink = Callable[[str, bytes], None]
Cancelled = Callable[[], bool]


@dataclass
class SeriesInfo:
    series_uid: str
    modality: str
    description: str = ""
    number: int | None = None
    instances: int | None = None
    thickness_mm: float | None = None


@dataclass
class StudyInfo:
    study_uid: str
    patient_id: str = ""
    patient_name: str = ""
    study_date: str = ""
    accession_number: str = ""
    description: str = ""
    modalities: list[str] = field(default_factory=list)
    series: list[SeriesInfo] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class StoreOutcome:
    sop_uid: str
    accepted: bool
    reason: str = ""  # why not, or a warning


class PacsClient(Protocol):
    """One server, one protocol. Every method raises IctviewError with one line."""

    def echo(self) -> str: ...

    def find_studies(self, patient_id: str = "", study_date: str = "", modality: str = "",
                     study_uid: str = "") -> list[StudyInfo]: ...

    def find_series(self, study_uid: str) -> list[SeriesInfo]: ...

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]: ...

    def retrieve(self, study_uid: str, series_uid: str, sop_uids: list[str],
                 sink: InstanceSink, cancelled: Cancelled | None = None,
                 whole: bool = False) -> None:
        """Send each of `sop_uids` to `sink`; `whole`: they are the entire series (one
        series-level request instead of a list of instances)."""

    def store(self, datasets: list[pydicom.Dataset]) -> list[StoreOutcome]: ...

    def close(self) -> None: ...


def as_float(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def as_int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None
