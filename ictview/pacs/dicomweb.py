"""DICOMweb (QIDO-RS, WADO-RS, STOW-RS) through dicomweb-client."""

from __future__ import annotations

from contextlib import contextmanager
from io import BytesIO
from typing import Iterator

import pydicom

from ictview.errors import IctviewError
from ictview.pacs.records import (
    Cancelled, InstanceSink, SeriesInfo, StoreOutcome, StudyInfo, as_float, as_int,
)
from ictview.pacs.target import PASSWORD_ENV, Target

STUDY_FIELDS = ["PatientID", "PatientName", "StudyDate", "AccessionNumber", "StudyDescription",
                "ModalitiesInStudy"]
SERIES_FIELDS = ["Modality", "SeriesDescription", "SeriesNumber",
                 "NumberOfSeriesRelatedInstances", "SliceThickness"]
# WADO-RS in the transfer syntax the server holds: the same bytes as the source (a file
# import of them gives identical HU), and no transcoding the server may not be able to do
# (Debian's Orthanc cannot transcode JPEG 2000: it answers HTTP 500 to the default request)
AS_STORED = (("application/dicom", "*"),)
ACCEPT_AS_STORED = 'multipart/related; type="application/dicom"; transfer-syntax=*'
# STOW-RS failure reasons (PS3.18 Table 10.5.3-1 uses the C-STORE status codes)
_FAILURE = {0xA700: "out of resources", 0xA900: "data set does not match SOP class",
            0xC000: "cannot understand", 0x0110: "processing failure",
            0x0122: "SOP class not supported", 0x0124: "not authorized"}


def _value(item: dict, keyword: str):
    from pydicom.datadict import tag_for_keyword

    el = item.get(f"{tag_for_keyword(keyword):08X}") or {}
    values = el.get("Value") or []
    if not values:
        return ""
    v = values[0]
    if isinstance(v, dict):  # PN
        return v.get("Alphabetic", "")
    return v


def _values(item: dict, keyword: str) -> list:
    from pydicom.datadict import tag_for_keyword

    return list((item.get(f"{tag_for_keyword(keyword):08X}") or {}).get("Value") or [])


class DicomWebPacs:
    def __init__(self, target: Target):
        import requests
        from dicomweb_client.api import DICOMwebClient

        self.target = target
        session = requests.Session()
        if target.user or target.password:
            session.auth = (target.user, target.password)
        self._session = session
        self._client = DICOMwebClient(target.url, session=session, timeout=target.timeout_s)
        # its `retrying` decorator also retries every exception with exponential back-off
        # (a server that is down costs 30 s); we fail at once and say what to do
        self._client.set_http_retry_params(retry=False)

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn what requests raises into one line that says what to do (never the password)."""
        import requests

        where = self.target.display
        try:
            yield
        except requests.exceptions.Timeout:
            raise IctviewError(f"{where}: no answer within {self.target.timeout_s:g} s while "
                               f"trying to {action} (server busy or unreachable; retry or raise "
                               "--timeout)") from None
        except requests.exceptions.ConnectionError:
            raise IctviewError(f"{where}: cannot connect to {action} (server down or wrong "
                               "host/port?)") from None
        except requests.exceptions.HTTPError as e:
            code = e.response.status_code if e.response is not None else 0
            if code in (401, 403):
                hint = f"check --user and {PASSWORD_ENV}"
            elif code == 404:
                hint = "wrong DICOMweb root in the address, or no such object"
            else:
                hint = "see the server's log"
            raise IctviewError(f"{where}: HTTP {code} when trying to {action} ({hint})") from None
        except requests.exceptions.RequestException as e:
            raise IctviewError(f"{where}: {type(e).__name__} when trying to {action}") from None
        except (ValueError, KeyError) as e:
            raise IctviewError(f"{where}: unreadable answer when trying to {action} "
                               f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"
                               ) from None

    def echo(self) -> str:
        with self._errors("query it"):
            self._client.search_for_studies(limit=1)
        return f"{self.target.display}: DICOMweb QIDO-RS answers"

    def find_studies(self, patient_id: str = "", study_date: str = "", modality: str = "",
                     study_uid: str = "") -> list[StudyInfo]:
        filters = {k: v for k, v in (("PatientID", patient_id), ("StudyDate", study_date),
                                     ("ModalitiesInStudy", modality),
                                     ("StudyInstanceUID", study_uid)) if v}
        with self._errors("search for studies"):
            found = self._client.search_for_studies(fields=STUDY_FIELDS, search_filters=filters)
        out = []
        for item in found:
            out.append(StudyInfo(
                study_uid=str(_value(item, "StudyInstanceUID")),
                patient_id=str(_value(item, "PatientID")),
                patient_name=str(_value(item, "PatientName")),
                study_date=str(_value(item, "StudyDate")),
                accession_number=str(_value(item, "AccessionNumber")),
                description=str(_value(item, "StudyDescription")),
                modalities=[str(m) for m in _values(item, "ModalitiesInStudy")],
            ))
        return out

    def find_series(self, study_uid: str) -> list[SeriesInfo]:
        with self._errors(f"list the series of study {study_uid}"):
            found = self._client.search_for_series(study_uid, fields=SERIES_FIELDS)
        return [SeriesInfo(
            series_uid=str(_value(s, "SeriesInstanceUID")),
            modality=str(_value(s, "Modality")),
            description=str(_value(s, "SeriesDescription")),
            number=as_int(_value(s, "SeriesNumber")),
            instances=as_int(_value(s, "NumberOfSeriesRelatedInstances")),
            thickness_mm=as_float(_value(s, "SliceThickness")),
        ) for s in found]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        with self._errors(f"list the instances of series {series_uid}"):
            found = self._client.search_for_instances(study_uid, series_uid,
                                                      fields=["SOPInstanceUID"])
        return [str(_value(i, "SOPInstanceUID")) for i in found]

    def retrieve(self, study_uid: str, series_uid: str, sop_uids: list[str],
                 sink: InstanceSink, cancelled: Cancelled | None = None,
                 whole: bool = False) -> None:
        """WADO-RS: the whole series in one multipart answer when every instance is wanted,
        otherwise one request per missing instance (a resumed pull)."""
        wanted = set(sop_uids)
        with self._errors(f"retrieve series {series_uid}"):
            for sop in [None] if whole else sop_uids:
                stream = self._parts(study_uid, series_uid, sop)
                for data in stream:
                    if cancelled and cancelled():
                        stream.close()
                        return
                    uid = _sop_uid(data)
                    if uid in wanted:
                        sink(uid, data)

    def _parts(self, study_uid: str, series_uid: str, sop_uid: str | None) -> Iterator[bytes]:
        """The Part 10 bytes of each instance of the series (or of one instance), as the
        server sent them.

        dicomweb-client's public retrieve methods parse every part into a Dataset that we
        would have to encode again (two thirds of a pull's time, measured); its own GET
        (`_http_get`, with its timeout and error handling) and multipart decoder
        (`_decode_multipart_message`) give the bytes. Should a later version drop them,
        the public parse-and-encode path is taken."""
        get = getattr(self._client, "_http_get", None)
        decode = getattr(self._client, "_decode_multipart_message", None)
        if get is not None and decode is not None:
            url = f"{self.target.url}/studies/{study_uid}/series/{series_uid}"
            url += f"/instances/{sop_uid}" if sop_uid else ""
            response = get(url, headers={"Accept": ACCEPT_AS_STORED}, stream=True)
            if response.headers.get("Content-Type", "").startswith("application/dicom"):
                yield response.content  # a server that sends one part unencapsulated
                return
            yield from decode(response, stream=True)
        elif sop_uid is None:
            for ds in self._client.iter_series(study_uid, series_uid, media_types=AS_STORED):
                yield _encode(ds)
        else:
            yield _encode(self._client.retrieve_instance(study_uid, series_uid, sop_uid,
                                                         media_types=AS_STORED))

    def store(self, datasets: list[pydicom.Dataset]) -> list[StoreOutcome]:
        with self._errors("store instances (STOW-RS)"):
            answer = self._client.store_instances(datasets)
        outcomes = []
        for item in getattr(answer, "ReferencedSOPSequence", []) or []:
            warn = getattr(item, "WarningReason", None)
            outcomes.append(StoreOutcome(str(item.ReferencedSOPInstanceUID), True,
                                         f"warning 0x{int(warn):04X}" if warn else ""))
        for item in getattr(answer, "FailedSOPSequence", []) or []:
            code = int(getattr(item, "FailureReason", 0) or 0)
            outcomes.append(StoreOutcome(str(item.ReferencedSOPInstanceUID), False,
                                         f"0x{code:04X} {_FAILURE.get(code, 'refused')}"))
        return outcomes

    def close(self) -> None:
        self._session.close()


def _sop_uid(data: bytes) -> str:
    ds = pydicom.dcmread(BytesIO(data), stop_before_pixels=True,
                         specific_tags=["SOPInstanceUID"])
    return str(ds.SOPInstanceUID)


def _encode(ds: pydicom.Dataset) -> bytes:
    with BytesIO() as b:
        pydicom.dcmwrite(b, ds, enforce_file_format=True)
        return b.getvalue()
