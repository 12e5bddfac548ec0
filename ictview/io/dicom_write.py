"""Write CT Image Storage series: used by the synthetic generator and by tests.

The files carry every module `dciodvfy` checks for a CT image (patient, study,
series, frame of reference, equipment, acquisition, image, image plane, image
pixel, CT image, VOI LUT, SOP common), so the import paths run on real DICOM.

Transfer syntaxes: explicit VR little endian (default), implicit VR little
endian, JPEG Lossless SV1 (our own encoder: pydicom has none, see
dicom_jpeg_lossless), JPEG 2000 lossless and JPEG-LS lossless (pydicom's
encoders, pylibjpeg-openjpeg / pyjpegls), RLE lossless (pydicom's native encoder).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid as uids
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.valuerep import format_number_as_ds

from ictview.core.geometry import Geometry
from ictview.errors import IctviewError

CT_IMAGE_STORAGE = uids.CTImageStorage
IMPLEMENTATION_CLASS_UID = "1.2.826.0.1.3680043.8.498.1"  # pydicom's root, as pydicom itself writes
IMPLEMENTATION_VERSION = "ICTVIEW_010"

UNCOMPRESSED = (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian)
SUPPORTED_SYNTAXES = (
    uids.ExplicitVRLittleEndian,
    uids.ImplicitVRLittleEndian,
    uids.JPEGLosslessSV1,
    uids.JPEG2000Lossless,
    uids.JPEGLSLossless,
    uids.RLELossless,
)


def can_encode(transfer_syntax: str) -> bool:
    """True when this installation can write `transfer_syntax` (encoder plugins present)."""
    ts = uids.UID(str(transfer_syntax))
    if ts not in SUPPORTED_SYNTAXES:
        return False
    if ts in UNCOMPRESSED or ts == uids.JPEGLosslessSV1:
        return True
    from pydicom.pixels.encoders.base import get_encoder

    try:
        return bool(get_encoder(ts).is_available)
    except Exception:  # pydicom raises for syntaxes it has no encoder for
        return False


@dataclass
class CTSeriesSpec:
    patient_id: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    patient_name: str = ""  # defaults to patient_id (written "<patient_id>^": family name)
    accession_number: str = ""
    study_id: str = "1"
    study_date: str = "20200101"  # YYYYMMDD
    study_time: str = "120000"
    series_number: int = 1
    series_description: str = "HEAD 5mm"
    manufacturer: str = "ictview-synth"
    model_name: str = "Phantom"
    institution_name: str = ""
    convolution_kernel: str = "H30s"
    kvp: float = 120.0
    slice_thickness: float = 5.0
    rescale_intercept: float = -1024.0
    rescale_slope: float = 1.0
    pixel_representation: int = 0  # 0 unsigned (stored = HU - intercept), 1 signed
    image_type: tuple[str, ...] = ("ORIGINAL", "PRIMARY", "AXIAL")
    transfer_syntax: str = uids.ExplicitVRLittleEndian  # also JPEG lossless / JPEG 2000 lossless
    window_center: float = 40.0
    window_width: float = 80.0
    patient_sex: str = "O"
    patient_age: str = ""  # e.g. "045Y"
    # Stored value (DICOM units, like the PixelPaddingValue tag). Pixels of `hu` equal to
    # pixel_padding_value * slope + intercept are padding (outside the scanner's field of view).
    pixel_padding_value: int | None = None
    sop_uids: list[str] | None = None  # default: derived deterministically from series_uid + index


def deterministic_uid(*parts: object) -> str:
    """A valid UID that depends only on `parts` (same seed -> same UID)."""
    return uids.generate_uid(entropy_srcs=[repr(p) for p in parts])


def stored_values(hu: np.ndarray, spec: CTSeriesSpec) -> tuple[np.ndarray, int]:
    """HU -> stored pixel values (uint16 or int16) and the BitsStored that holds them."""
    slope = float(spec.rescale_slope)
    if slope == 0:
        raise IctviewError(f"series {spec.series_uid}: rescale slope is 0")
    raw = np.rint((np.asarray(hu, dtype=np.float64) - float(spec.rescale_intercept)) / slope)
    lo, hi = (float(raw.min()), float(raw.max())) if raw.size else (0.0, 0.0)
    if spec.pixel_representation == 0:
        if lo < 0 or hi > 65535:
            raise IctviewError(
                f"series {spec.series_uid}: HU {float(np.min(hu)):g}..{float(np.max(hu)):g} do not fit "
                f"unsigned 16-bit pixels with intercept {spec.rescale_intercept:g}, slope {slope:g}"
            )
        bits = 12 if hi <= 4095 else 16
        return raw.astype(np.uint16), bits
    if spec.pixel_representation == 1:
        if lo < -32768 or hi > 32767:
            raise IctviewError(
                f"series {spec.series_uid}: HU {float(np.min(hu)):g}..{float(np.max(hu)):g} do not fit "
                f"signed 16-bit pixels with intercept {spec.rescale_intercept:g}, slope {slope:g}"
            )
        bits = 12 if (lo >= -2048 and hi <= 2047) else 16
        return raw.astype(np.int16), bits
    raise IctviewError(f"series {spec.series_uid}: pixel_representation must be 0 or 1")


def _ds_number(value: float) -> str:
    """The most precise DS string (16 characters at most) for a float."""
    v = float(value)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return format_number_as_ds(v)


def _series_dataset(spec: CTSeriesSpec, geometry: Geometry, rows: int, cols: int, bits: int) -> Dataset:
    """Tags shared by every slice of the series."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = list(spec.image_type)
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.StudyDate = spec.study_date
    ds.SeriesDate = spec.study_date
    ds.AcquisitionDate = spec.study_date
    ds.ContentDate = spec.study_date
    ds.StudyTime = spec.study_time
    ds.SeriesTime = spec.study_time
    ds.AcquisitionTime = spec.study_time
    ds.ContentTime = spec.study_time
    ds.AccessionNumber = spec.accession_number
    ds.Modality = "CT"
    ds.Manufacturer = spec.manufacturer
    if spec.institution_name:
        ds.InstitutionName = spec.institution_name
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT HEAD WO CONTRAST"
    ds.SeriesDescription = spec.series_description
    ds.ManufacturerModelName = spec.model_name
    # default name = the ID as family name; the trailing '^' keeps dciodvfy from calling a
    # one-component name the retired Person Name form
    ds.PatientName = spec.patient_name or f"{spec.patient_id}^"
    ds.PatientID = spec.patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = spec.patient_sex
    if spec.patient_age:
        ds.PatientAge = spec.patient_age
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = _ds_number(spec.slice_thickness)
    ds.KVP = _ds_number(spec.kvp)
    ds.DataCollectionDiameter = "250"
    ds.ReconstructionDiameter = _ds_number(geometry.pixel_spacing[1] * cols)
    ds.GantryDetectorTilt = _ds_number(_tilt_signed(geometry))
    ds.TableHeight = "150"
    ds.RotationDirection = "CW"
    ds.ExposureTime = "1000"
    ds.XRayTubeCurrent = "300"
    ds.Exposure = "300"
    ds.ConvolutionKernel = spec.convolution_kernel
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = spec.study_uid
    ds.SeriesInstanceUID = spec.series_uid
    ds.StudyID = spec.study_id
    ds.SeriesNumber = spec.series_number
    ds.AcquisitionNumber = 1
    ds.ImageOrientationPatient = [_ds_number(v) for v in (*geometry.row_dir, *geometry.col_dir)]
    ds.FrameOfReferenceUID = spec.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.PixelSpacing = [_ds_number(v) for v in geometry.pixel_spacing]
    ds.BitsAllocated = 16
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = spec.pixel_representation
    if spec.pixel_padding_value is not None:
        # VR of PixelPaddingValue follows PixelRepresentation (US or SS)
        vr = "SS" if spec.pixel_representation == 1 else "US"
        ds.add_new(0x00280120, vr, int(spec.pixel_padding_value))
    ds.WindowCenter = _ds_number(spec.window_center)
    ds.WindowWidth = _ds_number(spec.window_width)
    ds.RescaleIntercept = _ds_number(spec.rescale_intercept)
    ds.RescaleSlope = _ds_number(spec.rescale_slope)
    ds.RescaleType = "HU"
    return ds


def _tilt_signed(geometry: Geometry) -> float:
    """Gantry tilt (degrees) from the slice step: the angle of the step in the y-z plane."""
    step = np.asarray(geometry.slice_step, dtype=float)
    n = geometry.normal
    if np.linalg.norm(step) == 0:
        return 0.0
    along = float(np.dot(step, n))
    col = np.asarray(geometry.col_dir, dtype=float)
    across = float(np.dot(step, col))
    return float(np.degrees(np.arctan2(across, abs(along) if along != 0 else 1e-12)))


def write_ct_series(
    out_dir: Path,
    hu: np.ndarray,
    geometry: Geometry,
    spec: CTSeriesSpec,
    *,
    instance_numbers: list[int] | None = None,
    file_names: list[str] | None = None,
) -> list[Path]:
    """Writes one CT Image Storage file per slice (slice k at geometry.slice_position(k)).
    hu is (z, y, x) int16 HU. Files pass `dciodvfy` with no errors. Returns the paths."""
    hu = np.asarray(hu)
    if hu.ndim != 3 or hu.shape[0] == 0:
        raise IctviewError(f"series {spec.series_uid}: hu must be a non-empty (z, y, x) array")
    nz, rows, cols = hu.shape
    ts = uids.UID(str(spec.transfer_syntax))
    if ts not in SUPPORTED_SYNTAXES:
        raise IctviewError(
            f"series {spec.series_uid}: cannot write transfer syntax {ts} ({ts.name}); "
            f"supported: {', '.join(u.name for u in SUPPORTED_SYNTAXES)}"
        )
    for name, seq in (("instance_numbers", instance_numbers), ("file_names", file_names)):
        if seq is not None and len(seq) != nz:
            raise IctviewError(f"series {spec.series_uid}: {name} has {len(seq)} items for {nz} slices")
    if spec.sop_uids is not None and len(spec.sop_uids) != nz:
        raise IctviewError(f"series {spec.series_uid}: sop_uids has {len(spec.sop_uids)} items for {nz} slices")

    if ts == uids.JPEG2000Lossless and min(rows, cols) < 32:
        # openjpeg's encoder always uses 6 wavelet resolutions: 2**5 pixels per side at least
        raise IctviewError(
            f"series {spec.series_uid}: JPEG 2000 encoding needs at least 32x32 pixels, got {rows}x{cols}"
        )
    stored, bits = stored_values(hu, spec)
    template = _series_dataset(spec, geometry, rows, cols, bits)
    normal = geometry.normal
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for k in range(nz):
        sop_uid = spec.sop_uids[k] if spec.sop_uids is not None else deterministic_uid(spec.series_uid, k)
        inst = int(instance_numbers[k]) if instance_numbers is not None else k + 1
        ds = copy.deepcopy(template)  # no element shared between slices: compress() edits some
        ds.SOPInstanceUID = sop_uid
        ds.InstanceNumber = inst
        ipp = geometry.slice_position(k)
        ds.ImagePositionPatient = [_ds_number(v) for v in ipp]
        ds.SliceLocation = _ds_number(float(np.dot(ipp, normal)))
        ds.file_meta = _file_meta(sop_uid, ts)
        _set_pixels(ds, stored[k], ts, bits, spec)
        name = file_names[k] if file_names is not None else f"CT{k + 1:04d}.dcm"
        path = out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _file_meta(sop_uid: str, ts: uids.UID) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    return meta


def _set_pixels(ds: Dataset, frame: np.ndarray, ts: uids.UID, bits: int, spec: CTSeriesSpec) -> None:
    frame = np.ascontiguousarray(frame)
    if ts in UNCOMPRESSED:
        ds.PixelData = frame.astype("<u2" if spec.pixel_representation == 0 else "<i2").tobytes()
        ds["PixelData"].VR = "OW"
        return
    if ts == uids.JPEGLosslessSV1:
        from ictview.io.dicom_jpeg_lossless import encode_jpeg_lossless_sv1

        # JPEG codes unsigned samples of `bits` precision: signed values go as two's complement
        samples = frame.view(np.uint16) & np.uint16((1 << bits) - 1)
        ds.PixelData = pydicom.encaps.encapsulate([encode_jpeg_lossless_sv1(samples, bits)])
        ds["PixelData"].VR = "OB"
        ds["PixelData"].is_undefined_length = True
        return
    # pydicom's encoders; a missing plugin becomes one clear line
    try:
        ds.compress(ts, frame, generate_instance_uid=False)
    except (RuntimeError, ValueError, NotImplementedError, ImportError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise IctviewError(f"series {spec.series_uid}: cannot encode {ts.name}: {first}") from exc


__all__ = [
    "CTSeriesSpec",
    "SUPPORTED_SYNTAXES",
    "can_encode",
    "deterministic_uid",
    "stored_values",
    "write_ct_series",
]
