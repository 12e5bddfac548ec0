"""pydicom's bundled test files (compressed, truncated, bad VR, no meta, DICOMDIR, ...):
every one is read into a volume or reported in `skipped` / IctviewError with one line."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pydicom
import pydicom.data
import pytest

from ictview.errors import IctviewError
from ictview.io import dicom_header
from ictview.io.dicom_series import read_series, scan

DATA = Path(pydicom.data.__file__).parent


def corpus_files() -> list[str]:
    files = {f for f in pydicom.data.get_testdata_files() if os.path.isfile(f)}
    files |= {str(p) for p in (DATA / "test_files").rglob("*") if p.is_file()}
    return sorted(files)


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    files = corpus_files()
    if len(files) < 50:
        pytest.skip(f"pydicom's test files are not installed ({len(files)} found)")
    return files


def _read_all(result) -> tuple[int, list[str]]:
    """Read every series; returns (volumes read, offenders with an exception other than IctviewError)."""
    read, offenders = 0, []
    for s in result.series:
        try:
            vol = read_series(s)
            assert vol.hu.ndim == 3 and vol.hu.shape[0] >= 1 and vol.hu.dtype.name == "int16"
            assert len(vol.sop_uids) == vol.hu.shape[0]
            assert all("\n" not in w for w in vol.warnings)
            read += 1
        except IctviewError as exc:
            if "\n" in str(exc):
                offenders.append(f"{s.files[0]}: multi-line IctviewError")
        except Exception as exc:  # the point of the test: list every other failure
            offenders.append(f"{s.files[0]}: {type(exc).__name__}: {exc}")
    return read, offenders


def test_whole_corpus_in_one_scan(corpus):
    result = scan([DATA / "test_files", *corpus])
    accounted = {os.path.realpath(f) for s in result.series for f in s.files}
    accounted |= {os.path.realpath(s.path) for s in result.skipped}
    missing = [f for f in corpus if os.path.realpath(f) not in accounted]
    assert not missing, f"files neither read nor skipped: {missing}"
    bad = [f"{s.path}: {s.reason!r}" for s in result.skipped if not s.reason or "\n" in s.reason]
    assert not bad, bad
    read, offenders = _read_all(result)
    assert not offenders, "\n".join(offenders)
    assert read >= 3  # CT_small, the J2K CT files and the dicomdirtests CT series


def test_each_file_on_its_own(corpus):
    offenders = []
    reads = 0
    for f in corpus:
        try:
            result = scan([f])
        except Exception as exc:
            offenders.append(f"{f}: scan raised {type(exc).__name__}: {exc}")
            continue
        if len(result.series) + len(result.skipped) != 1:
            offenders.append(f"{f}: {len(result.series)} series and {len(result.skipped)} skipped")
        n, bad = _read_all(result)
        reads += n
        offenders += bad
    assert not offenders, "\n".join(offenders)
    assert reads >= 5


def test_ct_small_is_read_with_its_values(corpus):
    path = pydicom.data.get_testdata_file("CT_small.dcm")
    (s,) = scan([path]).series
    vol = read_series(s)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert (vol.hu[0] == expected).all()
    assert vol.geometry.origin == tuple(float(v) for v in ds.ImagePositionPatient)


def test_fast_header_parser_agrees_with_pydicom(corpus):
    """The fast path decides only what pydicom would decide the same way."""
    compared, differences = 0, []
    for f in corpus:
        size = os.path.getsize(f)
        with open(f, "rb") as fp:
            buf = fp.read()
        try:
            fast_values, fast_pixels = dicom_header._parse_fast(buf, size)
        except Exception:
            continue  # left to pydicom: nothing to compare
        try:
            slow_values, slow_pixels = dicom_header._parse_pydicom(f, size)
        except dicom_header.Skip as exc:
            differences.append(f"{f}: fast path parsed, pydicom skipped: {exc}")
            continue
        compared += 1
        built = []
        for values, pixels in ((fast_values, fast_pixels), (slow_values, slow_pixels)):
            try:
                built.append(dataclasses.asdict(dicom_header._build(f, size, values, pixels)))
            except dicom_header.Skip as exc:
                built.append(str(exc))
        if built[0] != built[1]:
            differences.append(f"{f}: {built[0]!r:.300} != {built[1]!r:.300}")
    assert compared > 100
    assert not differences, "\n".join(differences)
