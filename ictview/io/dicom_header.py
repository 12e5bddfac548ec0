"""Per-file DICOM header reading for the series scanner: fast, and never a traceback.

pydicom's header parse costs about 0.6 ms per CT file here, more than reading the
whole 512 KB of pixels, so the common case (Part 10 file, little-endian dataset)
is parsed by a small element walker that keeps only the tags the reader needs
and notes where the pixel data starts. Anything it does not recognise (no
preamble, big endian, deflate, odd lengths) goes to pydicom instead, so the fast
path only ever decides the easy cases. A file that neither can use becomes a
one-line reason.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
from dataclasses import dataclass

import pydicom
import pydicom.uid as uids
from pydicom.datadict import dictionary_VR, tag_for_keyword

# Tags the scanner and reader use. VR "US or SS" (PixelPaddingValue) is read as raw 16 bits.
_KEYWORDS = (
    "TransferSyntaxUID", "MediaStorageSOPClassUID",
    "SpecificCharacterSet", "ImageType", "SOPClassUID", "SOPInstanceUID", "StudyDate",
    "AccessionNumber", "Modality", "Manufacturer", "InstitutionName", "SeriesDescription",
    "ManufacturerModelName", "PatientID", "SliceThickness", "KVP", "SpacingBetweenSlices",
    "GantryDetectorTilt", "ConvolutionKernel", "StudyInstanceUID", "SeriesInstanceUID",
    "SeriesNumber", "InstanceNumber", "ImagePositionPatient", "ImageOrientationPatient",
    "FrameOfReferenceUID", "SamplesPerPixel", "PhotometricInterpretation", "NumberOfFrames",
    "Rows", "Columns", "PixelSpacing", "BitsAllocated", "BitsStored", "PixelRepresentation",
    "PixelPaddingValue", "PixelPaddingRangeLimit", "RescaleIntercept", "RescaleSlope",
)  # fmt: skip
WANTED: dict[int, tuple[str, str]] = {
    tag_for_keyword(k): (k, dictionary_VR(tag_for_keyword(k))) for k in _KEYWORDS
}
_TEXT_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UT"}
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_SHORT_VRS = {
    b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN",
    b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US",
}
PIXEL_DATA = 0x7FE00010
_OTHER_PIXEL_TAGS = {0x7FE00008, 0x7FE00009}  # float / double float pixel data: not CT
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
# dataset encodings the fast path reads: implicit LE, explicit LE and every encapsulated
# syntax (their datasets are explicit VR little endian)
_IMPLICIT = {uids.ImplicitVRLittleEndian}
_EXPLICIT_LE = {
    uids.ExplicitVRLittleEndian, uids.JPEGBaseline8Bit, uids.JPEGExtended12Bit, uids.JPEGLossless,
    uids.JPEGLosslessSV1, uids.JPEGLSLossless, uids.JPEGLSNearLossless, uids.JPEG2000Lossless,
    uids.JPEG2000, uids.HTJ2KLossless, uids.HTJ2KLosslessRPCL, uids.HTJ2K, uids.RLELossless,
}  # fmt: skip
_FIRST_READ = 16384
CT_IMAGE_STORAGE = str(uids.CTImageStorage)
DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


class Skip(Exception):
    """A file the scanner leaves out; the message is the one-line reason.

    `series_uid` / `modality`: set for a file left out for its modality, so the scan can
    tell a CT series that some of its SeriesInstanceUID's files were another modality."""

    def __init__(self, reason: str, series_uid: str = "", modality: str = "") -> None:
        super().__init__(one_line(reason))
        self.series_uid = series_uid
        self.modality = modality


def one_line(text: str, limit: int = 300) -> str:
    """Printable, single line, bounded: damaged files put anything in their values."""
    clean = "".join(c if c.isprintable() else "?" for c in " ".join(str(text).split()))
    return clean if len(clean) <= limit else clean[: limit - 3] + "..."


class _NeedMore(Exception):
    """The header continues past the bytes read so far."""


class _Unusual(Exception):
    """Something the fast parser leaves to pydicom."""


@dataclass(slots=True)
class PixelLocation:
    tag_offset: int  # where the (7FE0,0010) element starts
    value_offset: int  # where its value starts
    length: int | None  # None: undefined length (encapsulated)
    vr: str
    float_data: bool = False  # (7FE0,0008/0009): float pixels, never CT


@dataclass(slots=True)
class FileHeader:
    """What the scanner keeps of one file: enough to group, sort, check and read it."""

    path: str
    file_size: int
    transfer_syntax: str
    sop_class_uid: str
    sop_uid: str
    study_uid: str
    series_uid: str
    patient_id: str
    accession_number: str
    study_date: str
    modality: str
    series_number: int | None
    series_description: str
    instance_number: int | None
    image_type: tuple[str, ...]
    slice_thickness: float | None
    spacing_between_slices: float | None
    gantry_tilt: float | None
    ipp: tuple[float, float, float]
    iop: tuple[float, float, float, float, float, float]
    pixel_spacing: tuple[float, float]
    rows: int
    cols: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    slope: float
    intercept: float
    rescale_missing: bool
    padding: int | None  # in stored-value units, interpreted per PixelRepresentation
    padding_limit: int | None
    pixels: PixelLocation | None  # None: read pixels with pydicom
    meta: dict  # manufacturer, model, kernel, kvp, institution, frame of reference


def read_file_header(path: str) -> FileHeader:
    """Parse one file's header. Raises Skip(reason) for anything the CT reader cannot use."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fp:
            buf = fp.read(_FIRST_READ)
            values = pixels = None
            try:
                values, pixels = _parse_fast(buf, size)
            except _NeedMore:
                if len(buf) < size:
                    fp.seek(0)
                    buf = fp.read()
                    try:
                        values, pixels = _parse_fast(buf, size)
                    except (_NeedMore, _Unusual, struct.error, ValueError, IndexError):
                        values = None
            except (_Unusual, struct.error, ValueError, IndexError):
                values = None
    except OSError as exc:
        raise Skip(f"cannot read file: {exc.strerror or exc}") from None
    if values is None:
        values, pixels = _parse_pydicom(path, size)
    return _build(path, size, values, pixels)


# ---------------------------------------------------------------- fast path


def _parse_fast(buf: bytes, size: int) -> tuple[dict, PixelLocation | None]:
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise _Unusual
    raw: dict[int, tuple[str, bytes]] = {}
    pos = 132
    n = len(buf)
    # file meta information: always explicit VR little endian, group 0002
    while pos + 8 <= n and buf[pos : pos + 2] == b"\x02\x00":
        group, elem = struct.unpack_from("<HH", buf, pos)
        vr = buf[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<L", buf, pos + 8)
            hdr = 12
        elif vr in _SHORT_VRS:
            (length,) = struct.unpack_from("<H", buf, pos + 6)
            hdr = 8
        else:
            raise _Unusual
        if length == _UNDEFINED:
            raise _Unusual
        tag = (group << 16) | elem
        if tag in WANTED:
            raw[tag] = (vr.decode("ascii"), buf[pos + hdr : pos + hdr + length])
        pos += hdr + length
    if pos > n:
        raise _NeedMore
    ts_raw = raw.get(0x00020010)
    if ts_raw is None:
        raise _Unusual
    ts = ts_raw[1].decode("ascii", "replace").strip("\x00 ")
    if ts in _IMPLICIT:
        implicit = True
    elif ts in _EXPLICIT_LE:
        implicit = False
    else:
        raise _Unusual  # big endian, deflate, private: pydicom decides
    pixels = _walk(buf, pos, implicit, raw, size)
    return _decode(raw), pixels


def _walk(buf: bytes, pos: int, implicit: bool, raw: dict, size: int) -> PixelLocation | None:
    """Top-level elements up to the pixel data; keeps the wanted ones in `raw`."""
    n = len(buf)
    unpack = struct.unpack_from
    more = _NeedMore if n < size else _Unusual  # running out of bytes: read on, or give up
    prev_tag = 0
    while True:
        if pos >= n:
            if n >= size:
                return None  # the file ends without pixel data
            raise _NeedMore
        if pos + 8 > n:
            raise more
        if implicit:
            group, elem, length = unpack("<HHL", buf, pos)
            hdr = 8
            vrb = b""
        else:
            group, elem, vrb, length = unpack("<HH2sH", buf, pos)
            hdr = 8
            if vrb in _LONG_VRS:
                if pos + 12 > n:
                    raise more
                (length,) = unpack("<L", buf, pos + 8)
                hdr = 12
            elif vrb not in _SHORT_VRS:
                raise _Unusual
        tag = (group << 16) | elem
        if tag <= prev_tag:
            raise _Unusual  # out of order: let pydicom judge
        prev_tag = tag
        if tag == PIXEL_DATA or tag in _OTHER_PIXEL_TAGS:
            return PixelLocation(
                pos, pos + hdr, None if length == _UNDEFINED else length, vrb.decode("ascii") or "OW",
                float_data=tag != PIXEL_DATA,
            )  # fmt: skip
        if length == _UNDEFINED:
            pos = _skip_items(buf, pos + hdr, implicit, size)
            continue
        end = pos + hdr + length
        if tag in WANTED:
            if end > n:
                raise more
            raw[tag] = (vrb.decode("ascii"), buf[pos + hdr : end])
        pos = end


def _skip_items(buf: bytes, pos: int, implicit: bool, size: int) -> int:
    """Skip an undefined-length sequence's items; returns the offset after its delimiter."""
    n = len(buf)
    unpack = struct.unpack_from
    while True:
        if pos + 8 > n:
            raise _NeedMore if n < size else _Unusual
        group, elem, length = unpack("<HHL", buf, pos)
        tag = (group << 16) | elem
        if tag == _SEQ_END:
            return pos + 8
        if tag != _ITEM:
            raise _Unusual
        pos += 8
        if length != _UNDEFINED:
            pos += length
            continue
        # undefined-length item: walk its elements to the item delimiter
        while True:
            if pos + 8 > n:
                raise _NeedMore if n < size else _Unusual
            group, elem = unpack("<HH", buf, pos)
            tag = (group << 16) | elem
            if tag == _ITEM_END:
                pos += 8
                break
            if implicit:
                (length,) = unpack("<L", buf, pos + 4)
                hdr = 8
            else:
                vrb = buf[pos + 4 : pos + 6]
                if vrb in _LONG_VRS:
                    if pos + 12 > n:
                        raise _NeedMore if n < size else _Unusual
                    (length,) = unpack("<L", buf, pos + 8)
                    hdr = 12
                elif vrb in _SHORT_VRS:
                    (length,) = unpack("<H", buf, pos + 6)
                    hdr = 8
                else:
                    raise _Unusual
            if length == _UNDEFINED:
                pos = _skip_items(buf, pos + hdr, implicit, size)
            else:
                pos += hdr + length


def _decode(raw: dict[int, tuple[str, bytes]]) -> dict[str, list]:
    """Raw element bytes -> {keyword: list of str (text VRs) or list of int (binary)}."""
    charset = raw.get(0x00080005)
    encoding = "latin-1"
    if charset is not None:
        terms = charset[1].decode("ascii", "replace").strip("\x00 ").split("\\")
        if "ISO_IR 192" in terms:
            encoding = "utf-8"
    out: dict[str, list] = {}
    for tag, (file_vr, value) in raw.items():
        keyword, dict_vr = WANTED[tag]
        vr = file_vr if file_vr in _TEXT_VRS or file_vr in ("US", "SS", "UL", "SL") else dict_vr
        if vr in _TEXT_VRS:
            text = value.decode(encoding, "replace").rstrip("\x00 ").lstrip(" ")
            out[keyword] = [t.strip(" \x00") for t in text.split("\\")] if text else []
        elif vr in ("US", "SS", "US or SS"):
            fmt = "<h" if vr == "SS" else "<H"
            out[keyword] = [v for (v,) in struct.iter_unpack(fmt, value[: len(value) // 2 * 2])]
        elif vr in ("UL", "SL"):
            fmt = "<l" if vr == "SL" else "<L"
            out[keyword] = [v for (v,) in struct.iter_unpack(fmt, value[: len(value) // 4 * 4])]
        else:
            raise _Unusual  # e.g. a wanted tag written as UN with no usable VR
    return out


# ---------------------------------------------------------------- pydicom path


def _parse_pydicom(path: str, size: int) -> tuple[dict, PixelLocation | None]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            force = _looks_like_dicom(path)
            with open(path, "rb") as fp:
                ds = pydicom.dcmread(fp, stop_before_pixels=True, force=force)
                at = fp.tell()
                head = fp.read(12)
        except Skip:
            raise
        except pydicom.errors.InvalidDicomError:
            raise Skip("not a DICOM file") from None
        except Exception as exc:  # pydicom raises many kinds for damaged files
            raise Skip(f"unreadable DICOM header: {exception_line(exc)}") from None
        try:
            values = _values_from_dataset(ds)
        except Exception as exc:
            raise Skip(f"unreadable DICOM header: {exception_line(exc)}") from None
    return values, _pixel_location(ds, at, head)


def _pixel_location(ds: pydicom.Dataset, at: int, head: bytes) -> PixelLocation | None:
    """Where pydicom stopped: the pixel data element, if the file has one."""
    if len(head) < 8:
        return None
    implicit, little = ds.original_encoding if ds.original_encoding else (None, True)
    fmt = "<HH" if little is not False else ">HH"
    group, elem = struct.unpack(fmt, head[:4])
    tag = (group << 16) | elem
    if tag not in _OTHER_PIXEL_TAGS and tag != PIXEL_DATA:
        return None
    if little is False:
        # big endian: the pixels are there, but only pydicom reads them
        return PixelLocation(-1, -1, None, "OW", float_data=tag != PIXEL_DATA)
    if implicit:
        (length,) = struct.unpack("<L", head[4:8])
        return PixelLocation(at, at + 8, None if length == _UNDEFINED else length, "OW", tag != PIXEL_DATA)
    vrb = head[4:6]
    if vrb in _LONG_VRS and len(head) == 12:
        (length,) = struct.unpack("<L", head[8:12])
        return PixelLocation(
            at, at + 12, None if length == _UNDEFINED else length, vrb.decode("ascii"), tag != PIXEL_DATA
        )
    return PixelLocation(-1, -1, None, "OW", tag != PIXEL_DATA)


def _looks_like_dicom(path: str) -> bool:
    """True for Part 10 files and for bare datasets that start with a plausible element."""
    with open(path, "rb") as fp:
        head = fp.read(132)
    if len(head) >= 132 and head[128:132] == b"DICM":
        return False  # pydicom reads it without force
    if len(head) < 8:
        raise Skip("not a DICOM file (too short)")
    group = struct.unpack("<H", head[:2])[0]
    group_be = struct.unpack(">H", head[:2])[0]
    if group in (0x0002, 0x0008) or group_be in (0x0002, 0x0008):
        return True
    raise Skip("not a DICOM file (no DICM prefix and no dataset start)")


def _values_from_dataset(ds: pydicom.Dataset) -> dict[str, list]:
    out: dict[str, list] = {}
    meta = getattr(ds, "file_meta", None)
    for tag, (keyword, vr) in WANTED.items():
        src = meta if tag >> 16 == 0x0002 else ds
        if src is None or tag not in src:
            continue
        elem = src[tag]
        value = elem.value
        if value is None or value == "" or (isinstance(value, bytes) and not value):
            out[keyword] = []
            continue
        if isinstance(value, bytes):
            # US or SS, or UN: raw little-endian 16-bit values
            if keyword in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
                out[keyword] = [v for (v,) in struct.iter_unpack("<H", value[: len(value) // 2 * 2])]
                continue
            raise Skip(f"unreadable {keyword} (VR {elem.VR})")
        items = list(value) if isinstance(value, (list, tuple, pydicom.multival.MultiValue)) else [value]
        if vr in _TEXT_VRS:
            out[keyword] = [_text(v) for v in items]
        else:
            out[keyword] = [int(v) for v in items]
    return out


def _text(v: object) -> str:
    if isinstance(v, float) and not isinstance(v, str):
        s = getattr(v, "original_string", None)
        return str(s) if s is not None else repr(float(v))
    return str(v).strip(" \x00")


# ---------------------------------------------------------------- checks


def exception_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {msg[0] if msg else ''}".rstrip(": ")
    return text[:200]


def _first(values: dict, key: str, default: str = "") -> str:
    v = values.get(key)
    return str(v[0]) if v else default


def _float(values: dict, key: str, count: int | None = None) -> tuple[float, ...] | None:
    v = values.get(key)
    if not v:
        return None
    try:
        out = tuple(float(x) for x in v)
    except (TypeError, ValueError):
        shown = "\\".join(str(x) for x in v)[:60]
        raise Skip(f"invalid {key} {shown!r}") from None
    if any(not math.isfinite(x) for x in out):
        raise Skip(f"invalid {key} (not finite)")
    if count is not None and len(out) != count:
        raise Skip(f"invalid {key}: {len(out)} values, expected {count}")
    return out


def _int(values: dict, key: str) -> int | None:
    v = values.get(key)
    if not v:
        return None
    try:
        return int(float(v[0])) if isinstance(v[0], str) else int(v[0])
    except (TypeError, ValueError):
        raise Skip(f"invalid {key} {str(v[0])[:40]!r}") from None


def _rescale(values: dict, key: str) -> float | None:
    """A rescale value as written (NaN and inf too); None when absent or empty."""
    v = values.get(key)
    if not v or not str(v[0]).strip():
        return None
    try:
        return float(v[0])
    except (TypeError, ValueError):
        raise Skip(f"invalid {key} {str(v[0])[:40]!r} (not a number)") from None


def _opt_float(values: dict, key: str) -> float | None:
    try:
        v = _float(values, key)
    except Skip:
        return None
    return v[0] if v else None


def _opt_int(values: dict, key: str) -> int | None:
    try:
        return _int(values, key)
    except Skip:
        return None


def _build(path: str, size: int, values: dict, pixels: PixelLocation | None) -> FileHeader:
    media_class = _first(values, "MediaStorageSOPClassUID")
    sop_class = _first(values, "SOPClassUID") or media_class
    if media_class == DICOMDIR_CLASS or sop_class == DICOMDIR_CLASS:
        raise Skip("DICOMDIR (media directory), not an image")
    modality = _first(values, "Modality").upper()
    if modality != "CT":
        raise Skip(f"modality {modality or 'missing'}, not CT",
                   series_uid=_first(values, "SeriesInstanceUID"), modality=modality or "missing")
    if sop_class and sop_class != CT_IMAGE_STORAGE:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom warns about malformed UIDs
            name = uids.UID(sop_class).name if uids.UID(sop_class).is_valid else sop_class
        raise Skip(f"SOP class {name[:60]}, not CT Image Storage")
    frames = _opt_int(values, "NumberOfFrames")
    if frames is not None and frames > 1:
        raise Skip(f"multi-frame image ({frames} frames), not supported")
    if pixels is None:
        raise Skip("no pixel data")
    if pixels.float_data:
        raise Skip("float pixel data, not a CT image")
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not _first(values, key):
            raise Skip(f"missing {key}")
    ipp = _float(values, "ImagePositionPatient", 3)
    iop = _float(values, "ImageOrientationPatient", 6)
    spacing = _float(values, "PixelSpacing", 2)
    for key, val in (("ImagePositionPatient", ipp), ("ImageOrientationPatient", iop), ("PixelSpacing", spacing)):
        if val is None:
            raise Skip(f"missing {key}")
    assert ipp is not None and iop is not None and spacing is not None
    r = iop[:3]
    c = iop[3:]
    nr = math.sqrt(sum(x * x for x in r))
    nc = math.sqrt(sum(x * x for x in c))
    if not (0.9 < nr < 1.1 and 0.9 < nc < 1.1) or abs(sum(a * b for a, b in zip(r, c))) > 0.05:
        raise Skip("invalid ImageOrientationPatient (not two unit vectors at right angles)")
    if spacing[0] <= 0 or spacing[1] <= 0:
        raise Skip("invalid PixelSpacing (not positive)")
    rows = _int(values, "Rows")
    cols = _int(values, "Columns")
    if not rows or not cols or rows < 1 or cols < 1:
        raise Skip("missing Rows/Columns")
    spp = _opt_int(values, "SamplesPerPixel") or 1
    photometric = _first(values, "PhotometricInterpretation", "MONOCHROME2").upper()
    if spp != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise Skip(f"not a grayscale image ({photometric}, {spp} samples per pixel)")
    bits_allocated = _int(values, "BitsAllocated")
    if bits_allocated not in (8, 16, 32):
        raise Skip(f"unsupported BitsAllocated {bits_allocated}")
    bits_stored = _opt_int(values, "BitsStored") or bits_allocated
    if not 1 <= bits_stored <= bits_allocated:
        bits_stored = bits_allocated
    pixel_rep = _opt_int(values, "PixelRepresentation") or 0
    if pixel_rep not in (0, 1):
        raise Skip(f"invalid PixelRepresentation {pixel_rep}")
    # kept as written, 0 / NaN / inf included: the series check (dicom_plausible) excludes
    # the series naming the value; only an absent value is "missing" (taken as 1 / 0)
    slope = _rescale(values, "RescaleSlope")
    intercept = _rescale(values, "RescaleIntercept")
    rescale_missing = slope is None or intercept is None
    slope = 1.0 if slope is None else slope
    intercept = 0.0 if intercept is None else intercept
    ts = _first(values, "TransferSyntaxUID", str(uids.ImplicitVRLittleEndian))
    expected = rows * cols * (bits_allocated // 8)
    if pixels.length is not None and pixels.value_offset >= 0:
        available = size - pixels.value_offset
        if min(pixels.length, available) < expected:
            raise Skip(f"pixel data truncated ({min(pixels.length, available)} of {expected} bytes)")
    elif pixels.value_offset >= 0 and size - pixels.value_offset < 16:
        raise Skip("pixel data truncated (encapsulated data missing)")
    fast = (
        pixels.tag_offset >= 0
        and pixels.length is not None
        and bits_allocated == 16
        and ts in (uids.ExplicitVRLittleEndian, uids.ImplicitVRLittleEndian)
    )
    meta = {
        "manufacturer": _first(values, "Manufacturer"),
        "model": _first(values, "ManufacturerModelName"),
        "kernel": "\\".join(str(v) for v in values.get("ConvolutionKernel", [])),
        "kvp": _opt_float(values, "KVP"),
        "institution": _first(values, "InstitutionName"),
        "frame_of_reference_uid": _first(values, "FrameOfReferenceUID"),
    }
    return FileHeader(
        path=path,
        file_size=size,
        transfer_syntax=ts,
        sop_class_uid=sop_class,
        sop_uid=_first(values, "SOPInstanceUID"),
        study_uid=_first(values, "StudyInstanceUID"),
        series_uid=_first(values, "SeriesInstanceUID"),
        patient_id=_first(values, "PatientID"),
        accession_number=_first(values, "AccessionNumber"),
        study_date=_first(values, "StudyDate"),
        modality=modality,
        series_number=_opt_int(values, "SeriesNumber"),
        series_description=_first(values, "SeriesDescription"),
        instance_number=_opt_int(values, "InstanceNumber"),
        image_type=tuple(str(v).upper() for v in values.get("ImageType", [])),
        slice_thickness=_opt_float(values, "SliceThickness"),
        spacing_between_slices=_opt_float(values, "SpacingBetweenSlices"),
        gantry_tilt=_opt_float(values, "GantryDetectorTilt"),
        ipp=(ipp[0], ipp[1], ipp[2]),
        iop=(iop[0], iop[1], iop[2], iop[3], iop[4], iop[5]),
        pixel_spacing=(spacing[0], spacing[1]),
        rows=rows,
        cols=cols,
        bits_allocated=bits_allocated,
        bits_stored=bits_stored,
        pixel_representation=pixel_rep,
        slope=slope,
        intercept=intercept,
        rescale_missing=rescale_missing,
        padding=_padding(values, "PixelPaddingValue", pixel_rep),
        padding_limit=_padding(values, "PixelPaddingRangeLimit", pixel_rep),
        pixels=pixels if fast else None,
        meta=meta,
    )


def _padding(values: dict, key: str, pixel_rep: int) -> int | None:
    v = values.get(key)
    if not v:
        return None
    try:
        x = int(v[0])
    except (TypeError, ValueError):
        return None
    # US or SS: the same 16 bits read as the image's pixel representation
    if pixel_rep == 1 and x > 32767:
        x -= 65536
    elif pixel_rep == 0 and x < 0:
        x += 65536
    return x
