"""De-identification on the way out: DICOM PS3.15 Annex E Basic Application Level
Confidentiality Profile (DCM 113100) with the Retain Longitudinal Temporal Information
with Modified Dates Option (DCM 113107). No other option is applied: private
attributes, descriptions, device and institution identity are removed, not retained.

What it does to each dataset (a copy; the stored files are never changed):
- every UID that is not a DICOM-defined one (1.2.840.10008.*) -> a new 2.25 UID, the
  same one every time (HMAC of the workspace's secret), kept in `WS/pacs/deid.sqlite`
  so a de-identified SEG still references the de-identified images of the same slices
  and the mapping can be read back;
- PatientID and PatientName -> a pseudonym per patient ("ANON-" + 10 hex digits);
- every date (DA, DT) shifted by a per-patient whole number of days (-3650..-365, the
  same for all of that patient's studies, so intervals are kept); times are kept;
- Table E.1-1 attributes: removed (X) or emptied (Z), dummy (D) where the IOD needs a
  value; every other person name emptied; all private attributes removed;
- PatientIdentityRemoved YES, DeidentificationMethod(CodeSequence) and
  LongitudinalTemporalInformationModified MODIFIED record what was done.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
import tempfile
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ictview.store.catalog import CatalogConnection
from ictview.store.workspace import Workspace

DB = Path("pacs") / "deid.sqlite"
METHOD = "PS3.15 E.1 Basic Profile; Retain Longitudinal Modified Dates"  # LO: 64 max
METHOD_CODES = (("113100", "Basic Application Confidentiality Profile"),
                ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"))
DICOM_ROOT = "1.2.840.10008."

# Table E.1-1 (Basic Profile), attributes other than UIDs, person names and dates, which
# the generic rules below already cover. X: remove, Z: empty.
REMOVE = frozenset("""
    InstitutionName InstitutionAddress InstitutionalDepartmentName InstitutionCodeSequence
    InstitutionalDepartmentTypeCodeSequence StationName OtherPatientIDs OtherPatientIDsSequence
    OtherPatientNames PatientAge PatientAddress PatientTelephoneNumbers PatientBirthTime
    PatientBirthName PatientMotherBirthName PatientSize PatientWeight MilitaryRank
    BranchOfService MedicalRecordLocator EthnicGroup Occupation AdditionalPatientHistory
    PatientComments PatientInsurancePlanCodeSequence MedicalAlerts Allergies
    CountryOfResidence RegionOfResidence SmokingStatus PregnancyStatus
    PatientReligiousPreference PatientSexNeutered ImageComments StudyDescription
    SeriesDescription ProtocolName RequestAttributesSequence ReferencedPatientSequence
    ReferencedStudySequence ReferencedPerformedProcedureStepSequence PerformedProcedureStepID
    PerformedProcedureStepDescription ScheduledProcedureStepDescription
    RequestedProcedureDescription AdmittingDiagnosesDescription
    AdmittingDiagnosesCodeSequence DerivationDescription AcquisitionComments
    ContributionDescription TextComments TextString PersonAddress PersonTelephoneNumbers
    PhysiciansOfRecordIdentificationSequence ReferringPhysicianAddress
    ReferringPhysicianTelephoneNumbers ReferringPhysicianIdentificationSequence
    PerformingPhysicianIdentificationSequence OperatorIdentificationSequence RequestingService
    IssuerOfPatientID CurrentPatientLocation PatientInstitutionResidence
    ResponsibleOrganization ResponsiblePerson DetectorID GantryID PlateID CassetteID
    ModifiedAttributesSequence OriginalAttributesSequence ReasonForStudy
    ReasonForTheRequestedProcedure RequestedContrastAgent ServiceEpisodeID
    ServiceEpisodeDescription VisitComments AdmissionID DischargeDiagnosisDescription
    FrameComments IconImageSequence SpecialNeeds PatientState ConsultingPhysicianName
    PhysiciansOfRecord PerformingPhysicianName NameOfPhysiciansReadingStudy OperatorsName
    RequestingPhysician ScheduledPerformingPhysicianName
    """.split())
EMPTY = frozenset("""
    AccessionNumber StudyID PatientSex PatientBirthDate ReferringPhysicianName
    FillerOrderNumberImagingServiceRequest PlacerOrderNumberImagingServiceRequest
    RequestedProcedureID ContentCreatorName VerifyingObserverName
    """.split())
# Type 1 in the IODs ictview sends (SEG, CT): D, a dummy instead of removal
DUMMY = {"DeviceSerialNumber": "0", "ContentDescription": "ICH labels"}


class Deidentifier:
    """The workspace's mapping: the same input always gives the same output."""

    def __init__(self, ws: Workspace):
        path = ws.root / DB
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(path, factory=CatalogConnection)  # errors name the file
        with self.con:
            self.con.executescript("""
                CREATE TABLE IF NOT EXISTS secret (key BLOB NOT NULL);
                CREATE TABLE IF NOT EXISTS uid_map (original TEXT PRIMARY KEY,
                    deidentified TEXT NOT NULL UNIQUE);
                CREATE TABLE IF NOT EXISTS patients (original_id TEXT PRIMARY KEY,
                    pseudonym TEXT NOT NULL UNIQUE, date_shift_days INTEGER NOT NULL);
                CREATE TABLE IF NOT EXISTS exam_files (study_uid TEXT PRIMARY KEY,
                    file_stem TEXT NOT NULL UNIQUE);
            """)
            row = self.con.execute("SELECT key FROM secret").fetchone()
            if row is None:
                self.con.execute("INSERT INTO secret VALUES (?)", (secrets.token_bytes(32),))
                row = self.con.execute("SELECT key FROM secret").fetchone()
        self._key = bytes(row[0])
        self._uids: dict[str, str] = {}

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Deidentifier":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _mac(self, *parts: str) -> bytes:
        return hmac.new(self._key, "\x00".join(parts).encode(), hashlib.sha256).digest()

    # ---- mappings --------------------------------------------------------------------

    def uid(self, original: str) -> str:
        if original.startswith(DICOM_ROOT) or not original:
            return original
        if original in self._uids:
            return self._uids[original]
        new = "2.25." + str(int.from_bytes(self._mac("uid", original)[:16], "big"))
        with self.con:
            self.con.execute("INSERT OR IGNORE INTO uid_map VALUES (?, ?)", (original, new))
        self._uids[original] = new
        return new

    def original_uid(self, deidentified: str) -> str | None:
        row = self.con.execute("SELECT original FROM uid_map WHERE deidentified=?",
                               (deidentified,)).fetchone()
        return row[0] if row else None

    def patient(self, patient_id: str) -> tuple[str, int]:
        """(pseudonym, date shift in days) of a patient."""
        row = self.con.execute("SELECT pseudonym, date_shift_days FROM patients "
                               "WHERE original_id=?", (patient_id,)).fetchone()
        if row:
            return row[0], int(row[1])
        mac = self._mac("patient", patient_id)
        pseudonym = "ANON-" + mac[:5].hex().upper()
        shift = -365 - int.from_bytes(mac[5:9], "big") % (3650 - 365 + 1)
        with self.con:
            self.con.execute("INSERT OR IGNORE INTO patients VALUES (?, ?, ?)",
                             (patient_id, pseudonym, shift))
        return pseudonym, shift

    def file_stem(self, study_uid: str) -> str:
        """A file name for an exam's export that says nothing of the patient."""
        stem = "ANON-" + self._mac("study", study_uid)[:6].hex().upper()
        with self.con:
            self.con.execute("INSERT OR IGNORE INTO exam_files VALUES (?, ?)", (study_uid, stem))
        return stem

    # ---- the profile -----------------------------------------------------------------

    def apply(self, ds: Dataset) -> Dataset:
        """A de-identified copy of `ds` (pixel data untouched)."""
        out = copy.deepcopy(ds)
        pseudonym, shift = self.patient(str(getattr(ds, "PatientID", "") or ""))
        out.remove_private_tags()
        self._clean(out, shift)
        out.PatientID = pseudonym
        out.PatientName = pseudonym
        out.PatientIdentityRemoved = "YES"
        out.DeidentificationMethod = METHOD
        codes = []
        for value, meaning in METHOD_CODES:
            c = Dataset()
            c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, "DCM", meaning
            codes.append(c)
        out.DeidentificationMethodCodeSequence = Sequence(codes)
        out.LongitudinalTemporalInformationModified = "MODIFIED"
        meta = getattr(out, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.uid(str(meta.MediaStorageSOPInstanceUID))
        return out

    def _clean(self, ds: Dataset, shift: int) -> None:
        for elem in list(ds):
            kw = elem.keyword
            if kw in REMOVE:
                del ds[elem.tag]
            elif kw in DUMMY:
                elem.value = DUMMY[kw]
            elif kw in EMPTY or elem.VR == "PN":
                elem.value = None
            elif elem.VR == "SQ":
                for item in elem.value:
                    self._clean(item, shift)
            elif elem.VR == "UI" and elem.value:
                vals = elem.value if elem.VM > 1 else [elem.value]
                mapped = [self.uid(str(v)) for v in vals]
                elem.value = mapped if elem.VM > 1 else mapped[0]
            elif elem.VR in ("DA", "DT") and elem.value:
                elem.value = _shift(elem.value, elem.VR, shift, elem.VM)


def _shift(value, vr: str, days: int, vm: int):
    def one(v: str) -> str:
        v = str(v)
        try:
            d = dt.datetime.strptime(v[:8], "%Y%m%d") + dt.timedelta(days=days)
        except ValueError:
            return ""  # an unreadable date is removed, not kept
        return d.strftime("%Y%m%d") + (v[8:] if vr == "DT" else "")

    if vm > 1:
        return [one(v) for v in value]
    return one(value)


def deidentify_file(deid: Deidentifier, path: Path, out: Path) -> Path:
    """Write a de-identified copy of the DICOM file `path` to `out` (atomic)."""
    ds = pydicom.dcmread(path)
    clean = deid.apply(ds)
    tmp = out.with_name(out.name + ".part")
    clean.save_as(tmp, enforce_file_format=True)
    tmp.replace(out)
    return out


def export_deidentified(ws: Workspace, labelset: str, fmt: str, out_dir: Path,
                        exams=None, progress=None):
    """`ictview export --deidentify`: the exporter writes into a private temporary folder,
    and only de-identified copies, named by `file_stem`, reach `out_dir`."""
    from ictview.io.export import ExportResult, export_labelset

    out_dir = Path(out_dir)
    result = ExportResult()
    with Deidentifier(ws) as deid, tempfile.TemporaryDirectory(prefix="ictview-deid-") as tmp:
        raw = export_labelset(ws, labelset, fmt, Path(tmp), exams, progress)
        result.skipped = list(raw.skipped)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in raw.written:
            suffix = ".seg.dcm" if path.name.endswith(".seg.dcm") else ".nii.gz"
            exam = path.name[: -len(suffix)]
            target = out_dir / (deid.file_stem(ws.exam(exam).study_uid) + suffix)
            if suffix == ".seg.dcm":
                deidentify_file(deid, path, target)
            else:  # NIfTI holds no identity but its file name (the exam name)
                tmp_target = target.with_name(target.name + ".part")
                tmp_target.write_bytes(path.read_bytes())
                tmp_target.replace(target)
            result.written.append(target)
    return result
