"""DIMSE (C-ECHO, C-FIND, C-GET or C-MOVE, C-STORE) through pynetdicom.

Retrieval uses C-GET (the instances come back on the same association) unless the
target names a move destination: then C-MOVE, with our own storage SCP listening on
`listen_port` (the server must know that AE title at this host and port).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

import pydicom
from pydicom.dataset import Dataset

from ictview.errors import IctviewError
from ictview.pacs.records import (
    Cancelled, InstanceSink, SeriesInfo, StoreOutcome, StudyInfo, as_float, as_int,
)
from ictview.pacs.target import Target

# the storage classes a pull asks for: CT images and the segmentations drawn on them
RETRIEVED_CLASSES = ("1.2.840.10008.5.1.4.1.1.2",      # CT Image Storage
                     "1.2.840.10008.5.1.4.1.1.2.1",    # Enhanced CT Image Storage
                     "1.2.840.10008.5.1.4.1.1.66.4")   # Segmentation Storage
PENDING = (0xFF00, 0xFF01)


# C-GET: what CT is stored in (uncompressed, JPEG lossless, JPEG-LS, JPEG 2000, RLE,
# deflate, JPEG baseline/extended, HTJ2K); 3 classes x 14 stays under the 128 contexts
GET_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2", "1.2.840.10008.1.2.4.70",
                "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",
                "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.5",
                "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",
                "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.203")


def _syntaxes() -> list[str]:
    """Every transfer syntax pynetdicom knows, so the server sends instances as it holds them
    (same bytes as the source, no transcoding it may be unable to do)."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES

    return list(ALL_TRANSFER_SYNTAXES)

# pynetdicom logs every refused association and abort at ERROR: our one-line error says it
logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)


def _status(ds) -> int:
    return int(getattr(ds, "Status", 0xFFFF)) if ds is not None else 0xFFFF


class DimsePacs:
    def __init__(self, target: Target):
        self.target = target

    # ---- associations ----------------------------------------------------------------

    def _ae(self):
        from pynetdicom import AE

        ae = AE(ae_title=self.target.calling_aet)
        t = self.target.timeout_s
        ae.acse_timeout, ae.dimse_timeout, ae.network_timeout, ae.connection_timeout = t, t, t, t
        return ae

    @contextmanager
    def _association(self, ae, action: str, **kwargs) -> Iterator:
        where = self.target.display
        assoc = ae.associate(self.target.host, self.target.port, ae_title=self.target.called_aet,
                             **kwargs)
        if not assoc.is_established:
            if assoc.is_rejected:
                raise IctviewError(
                    f"{where}: association rejected when trying to {action} (wrong called AE "
                    f"title, or the server does not accept calling AE title "
                    f"'{self.target.calling_aet}': check both on the server)")
            raise IctviewError(f"{where}: cannot connect to {action} (server down, wrong "
                               "host/port, or no answer within "
                               f"{self.target.timeout_s:g} s)")
        try:
            yield assoc
        except (ConnectionError, OSError) as e:
            raise IctviewError(f"{where}: connection lost while trying to {action} "
                               f"({type(e).__name__})") from None
        finally:
            if assoc.is_established:
                assoc.release()
        if assoc.is_aborted and not getattr(assoc, "ictview_cancelled", False):
            raise IctviewError(f"{where}: the association was aborted while trying to {action} "
                               "(server stopped or timed out)")

    def _need(self, assoc, abstract: str, action: str):
        if not any(c.abstract_syntax == abstract for c in assoc.accepted_contexts):
            raise IctviewError(f"{self.target.display}: the server does not offer {action} "
                               f"(presentation context {abstract} refused)")

    # ---- C-ECHO, C-FIND -------------------------------------------------------------

    def echo(self) -> str:
        from pynetdicom.sop_class import Verification

        ae = self._ae()
        ae.add_requested_context(Verification)
        with self._association(ae, "echo") as assoc:
            status = _status(assoc.send_c_echo())
        if status != 0:
            raise IctviewError(f"{self.target.display}: C-ECHO answered status 0x{status:04X}")
        return f"{self.target.display}: C-ECHO succeeded (calling AE {self.target.calling_aet})"

    def _find(self, query: Dataset, action: str) -> list[Dataset]:
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind as FIND

        ae = self._ae()
        ae.add_requested_context(FIND)
        out = []
        with self._association(ae, action) as assoc:
            self._need(assoc, FIND, "C-FIND (study root)")
            for status, identifier in assoc.send_c_find(query, FIND):
                code = _status(status)
                if code in PENDING and identifier is not None:
                    out.append(identifier)
                elif code not in PENDING and code != 0:
                    raise IctviewError(f"{self.target.display}: C-FIND to {action} failed with "
                                       f"status 0x{code:04X}")
        return out

    def find_studies(self, patient_id: str = "", study_date: str = "", modality: str = "",
                     study_uid: str = "") -> list[StudyInfo]:
        q = Dataset()
        q.QueryRetrieveLevel = "STUDY"
        q.StudyInstanceUID = study_uid
        q.PatientID = patient_id
        q.PatientName = ""
        q.StudyDate = study_date
        q.AccessionNumber = ""
        q.StudyDescription = ""
        q.ModalitiesInStudy = modality
        out = []
        for r in self._find(q, "search for studies"):
            mods = r.get("ModalitiesInStudy", "")
            mods = [str(m) for m in mods] if isinstance(mods, (list, pydicom.multival.MultiValue)) \
                else [m for m in str(mods).split("\\") if m]
            out.append(StudyInfo(
                study_uid=str(r.get("StudyInstanceUID", "")), patient_id=str(r.get("PatientID", "")),
                patient_name=str(r.get("PatientName", "")), study_date=str(r.get("StudyDate", "")),
                accession_number=str(r.get("AccessionNumber", "")),
                description=str(r.get("StudyDescription", "")), modalities=mods))
        return out

    def find_series(self, study_uid: str) -> list[SeriesInfo]:
        q = Dataset()
        q.QueryRetrieveLevel = "SERIES"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = ""
        q.Modality = ""
        q.SeriesDescription = ""
        q.SeriesNumber = ""
        q.NumberOfSeriesRelatedInstances = ""
        q.SliceThickness = ""
        return [SeriesInfo(
            series_uid=str(r.get("SeriesInstanceUID", "")), modality=str(r.get("Modality", "")),
            description=str(r.get("SeriesDescription", "")), number=as_int(r.get("SeriesNumber")),
            instances=as_int(r.get("NumberOfSeriesRelatedInstances")),
            thickness_mm=as_float(r.get("SliceThickness")),
        ) for r in self._find(q, f"list the series of study {study_uid}")]

    def find_instances(self, study_uid: str, series_uid: str) -> list[str]:
        q = Dataset()
        q.QueryRetrieveLevel = "IMAGE"
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = series_uid
        q.SOPInstanceUID = ""
        return [str(r.SOPInstanceUID) for r in
                self._find(q, f"list the instances of series {series_uid}") if "SOPInstanceUID" in r]

    # ---- C-GET / C-MOVE ---------------------------------------------------------------

    def _retrieve_query(self, study_uid: str, series_uid: str, sop_uids: list[str],
                        whole: bool) -> Dataset:
        q = Dataset()
        q.StudyInstanceUID = study_uid
        q.SeriesInstanceUID = series_uid
        if whole:
            q.QueryRetrieveLevel = "SERIES"
        else:
            q.QueryRetrieveLevel = "IMAGE"
            q.SOPInstanceUID = list(sop_uids)  # UID list matching (PS3.4 C.2.2.2.2)
        return q

    def retrieve(self, study_uid: str, series_uid: str, sop_uids: list[str],
                 sink: InstanceSink, cancelled: Cancelled | None = None,
                 whole: bool = False) -> None:
        if not sop_uids:
            return
        wanted = set(sop_uids)
        query = self._retrieve_query(study_uid, series_uid, sop_uids, whole)
        errors: list[str] = []

        def on_store(event) -> int:
            uid = str(event.request.AffectedSOPInstanceUID)
            if uid not in wanted:
                return 0x0000  # not asked for (a server sending more): accepted, not kept
            try:
                sink(uid, event.encoded_dataset())
            except Exception as e:  # noqa: BLE001 - reported after the association ends
                errors.append(f"{uid}: {e}")
                return 0xA700
            return 0x0000

        if self.target.move_aet:
            self._move(query, on_store, cancelled, series_uid)
        else:
            self._get(query, on_store, cancelled, series_uid)
        if errors:
            raise IctviewError(f"could not keep {len(errors)} received instance(s): {errors[0]}")

    def _get(self, query, on_store, cancelled, series_uid) -> None:
        from pynetdicom import build_role, evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelGet as GET

        ae = self._ae()
        ae.add_requested_context(GET)
        # one context per transfer syntax: the server accepts one syntax per context, and
        # given a single context with all of them it may pick one it must transcode to
        for sop_class in RETRIEVED_CLASSES:
            for syntax in GET_SYNTAXES:
                ae.add_requested_context(sop_class, [syntax])
        roles = [build_role(c, scp_role=True) for c in RETRIEVED_CLASSES]
        with self._association(ae, f"retrieve series {series_uid} (C-GET)", ext_neg=roles,
                               evt_handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            self._need(assoc, GET, "C-GET (study root)")
            self._run_retrieve(assoc.send_c_get(query, GET), assoc, cancelled, "C-GET")

    def _move(self, query, on_store, cancelled, series_uid) -> None:
        from pynetdicom import evt
        from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove as MOVE

        scp_ae = self._ae()
        scp_ae.ae_title = self.target.move_aet
        for sop_class in RETRIEVED_CLASSES:
            scp_ae.add_supported_context(sop_class, _syntaxes())
        try:
            server = scp_ae.start_server(("", self.target.listen_port), block=False,
                                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
        except OSError as e:
            raise IctviewError(f"--listen-port {self.target.listen_port}: cannot listen for the "
                               f"C-MOVE results ({e.strerror or e})") from None
        try:
            ae = self._ae()
            ae.add_requested_context(MOVE)
            with self._association(ae, f"retrieve series {series_uid} (C-MOVE)") as assoc:
                self._need(assoc, MOVE, "C-MOVE (study root)")
                self._run_retrieve(assoc.send_c_move(query, self.target.move_aet, MOVE), assoc,
                                   cancelled, "C-MOVE")
        finally:
            server.shutdown()

    def _run_retrieve(self, responses, assoc, cancelled, what: str) -> None:
        for status, _identifier in responses:
            if cancelled and cancelled():
                assoc.ictview_cancelled = True  # our own abort: not an error
                assoc.abort()
                return
            code = _status(status)
            if code in PENDING:
                continue
            if code == 0xA801:
                raise IctviewError(
                    f"{self.target.display}: {what} refused: the server does not know move "
                    f"destination '{self.target.move_aet}' (add it to the server's modalities "
                    "with this host and --listen-port, or omit --move-aet to use C-GET)")
            if code not in (0x0000, 0xB000):  # B000: some failed; the pull counts what came
                if what == "C-MOVE":  # Orthanc answers an unknown destination with C000
                    hint = (f"check that the server knows move destination "
                            f"'{self.target.move_aet}' at this host and --listen-port, or "
                            "omit --move-aet to use C-GET")
                else:
                    hint = "see the server's log; it may lack a codec for the stored syntax"
                raise IctviewError(f"{self.target.display}: {what} failed with status "
                                   f"0x{code:04X} ({hint})")

    # ---- C-STORE ---------------------------------------------------------------------

    def store(self, datasets: list[pydicom.Dataset]) -> list[StoreOutcome]:
        if not datasets:
            return []
        ae = self._ae()
        pairs = {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}
        for sop_class, syntax in sorted(pairs):
            ae.add_requested_context(sop_class, [syntax])
        outcomes = []
        with self._association(ae, "store instances (C-STORE)") as assoc:
            for ds in datasets:
                uid = str(ds.SOPInstanceUID)
                if not any(c.abstract_syntax == ds.SOPClassUID for c in assoc.accepted_contexts):
                    outcomes.append(StoreOutcome(uid, False, "SOP class not accepted by server"))
                    continue
                code = _status(assoc.send_c_store(ds))
                if code == 0x0000:
                    outcomes.append(StoreOutcome(uid, True))
                elif 0xB000 <= code <= 0xBFFF:
                    outcomes.append(StoreOutcome(uid, True, f"warning 0x{code:04X}"))
                else:
                    outcomes.append(StoreOutcome(uid, False, f"status 0x{code:04X}"))
        return outcomes

    def close(self) -> None:
        pass

