"""The CT writer: valid files (dciodvfy), exact values, deterministic UIDs, all syntaxes."""

from __future__ import annotations

import os
import subprocess

import numpy as np
import pydicom
import pydicom.uid as uids
import pytest

from ictview.errors import IctviewError
from ictview.io.dicom_jpeg_lossless import encode_jpeg_lossless_sv1
from ictview.io.dicom_write import SUPPORTED_SYNTAXES, CTSeriesSpec, can_encode, deterministic_uid, write_ct_series

DCIODVFY = "/usr/bin/dciodvfy"
needs_dciodvfy = pytest.mark.skipif(not os.path.exists(DCIODVFY), reason="dciodvfy not installed at /usr/bin/dciodvfy")


SYNTAXES = [
    pytest.param(ts, id=ts.name.split(" ")[0] + ts[-3:],
                 marks=pytest.mark.skipif(not can_encode(ts), reason=f"no encoder installed for {ts.name}"))
    for ts in SUPPORTED_SYNTAXES
]  # fmt: skip


def dciodvfy(path) -> list[str]:
    out = subprocess.run([DCIODVFY, str(path)], capture_output=True, text=True, timeout=60)
    return (out.stdout + out.stderr).splitlines()


@needs_dciodvfy
@pytest.mark.parametrize("ts", SYNTAXES)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_dciodvfy_reports_no_errors(write_series, phantom, axial_geometry, ts, signed):
    kw = {"pixel_representation": 1, "pixel_padding_value": -2000} if signed else {}
    hu = phantom(2, (32, 40), lo=-1024, hi=1500)
    if signed:
        hu[:, :3, :3] = -3024  # padding: stored -2000
    c, s = np.cos(np.radians(12)), np.sin(np.radians(12))
    geometry = axial_geometry(step=(0.0, 5 * s, 5 * c))  # gantry tilt: GantryDetectorTilt != 0
    w = write_series(hu, geometry=geometry, transfer_syntax=ts, patient_age="045Y", **kw)
    for path in w.paths:
        lines = dciodvfy(path)
        assert any("CTImage" in line for line in lines), lines  # validated as a CT image
        errors = [line for line in lines if "Error" in line]
        assert not errors, f"{ts.name}: {errors}"


@pytest.mark.parametrize("ts", SYNTAXES)
def test_values_and_tags_round_trip_through_pydicom(write_series, phantom, ts):
    hu = phantom(3, (32, 36))
    w = write_series(hu, transfer_syntax=ts, rescale_intercept=-1024.0, kvp=100.0, slice_thickness=2.5)
    for k, path in enumerate(w.paths):
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == ts
        assert ds.SOPClassUID == uids.CTImageStorage
        assert ds.SOPInstanceUID == w.spec.sop_uids[k]
        assert ds.InstanceNumber == k + 1
        assert np.allclose([float(v) for v in ds.ImagePositionPatient], w.geometry.slice_position(k))
        assert (ds.Modality, ds.RescaleType, float(ds.KVP), float(ds.SliceThickness)) == ("CT", "HU", 100.0, 2.5)
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 12, 11)
        back = ds.pixel_array.astype(np.int32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.array_equal(back, hu[k])


def test_instance_numbers_file_names_and_sop_uids_are_honoured(write_series):
    sops = [deterministic_uid("custom", k) for k in range(3)]
    w = write_series(n=3, instance_numbers=[30, 10, 20], file_names=["c.dcm", "a/b.dcm", "z.dcm"], sop_uids=sops)
    assert [p.relative_to(w.folder).as_posix() for p in w.paths] == ["c.dcm", "a/b.dcm", "z.dcm"]
    dss = [pydicom.dcmread(p) for p in w.paths]
    assert [ds.InstanceNumber for ds in dss] == [30, 10, 20]
    assert [ds.SOPInstanceUID for ds in dss] == sops


def test_deterministic_uid_is_stable_valid_and_distinct():
    a = deterministic_uid("ATL-0001", 0, "series")
    assert a == deterministic_uid("ATL-0001", 0, "series")
    assert a != deterministic_uid("ATL-0001", 1, "series")
    assert uids.UID(a).is_valid and len(a) <= 64


def test_default_sop_uids_derive_from_the_series_uid(tmp_path, phantom, axial_geometry):
    spec = CTSeriesSpec("P", deterministic_uid("s"), deterministic_uid("se"), deterministic_uid("f"))
    paths = write_ct_series(tmp_path, phantom(2, (8, 8)), axial_geometry(), spec)
    assert [pydicom.dcmread(p).SOPInstanceUID for p in paths] == [
        deterministic_uid(spec.series_uid, k) for k in range(2)
    ]


def test_every_supported_syntax_is_encodable_here():
    """pyjpegls (JPEG-LS) and pylibjpeg-openjpeg (JPEG 2000) are needed by the synthetic sites."""
    assert [ts.name for ts in SUPPORTED_SYNTAXES if not can_encode(ts)] == []
    assert not can_encode(uids.JPEGBaseline8Bit)


def test_writer_refuses_values_that_do_not_fit(write_series, phantom):
    hu = phantom(1, (8, 8))
    hu[0, 0, 0] = -2000  # below intercept -1024 with unsigned pixels
    with pytest.raises(IctviewError, match="do not fit"):
        write_series(hu)
    with pytest.raises(IctviewError, match="transfer syntax"):
        write_series(phantom(1, (8, 8)), transfer_syntax=uids.JPEGBaseline8Bit)
    with pytest.raises(IctviewError, match="32x32"):
        write_series(phantom(1, (16, 40)), transfer_syntax=uids.JPEG2000Lossless)


def test_same_inputs_write_identical_files(tmp_path, phantom, axial_geometry):
    hu = phantom(2, (8, 8))
    spec = CTSeriesSpec("P", deterministic_uid("s"), deterministic_uid("se"), deterministic_uid("f"))
    a = write_ct_series(tmp_path / "a", hu, axial_geometry(), spec)
    b = write_ct_series(tmp_path / "b", hu, axial_geometry(), spec)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]


@pytest.mark.parametrize("precision", [8, 12, 16])
def test_jpeg_lossless_encoder_extremes(precision, tmp_path):
    """Largest differences (SSSS 16 at 16 bits), flat areas, ramps: decoded by libjpeg."""
    top = (1 << precision) - 1
    rng = np.random.default_rng(precision)
    img = rng.integers(0, top + 1, size=(24, 33)).astype(np.uint16)
    img[0, :] = np.where(np.arange(33) % 2, top, 0)  # jumps of the whole range
    img[1, :] = img[1, 0]  # flat row
    img[2, :] = np.arange(33) * (top // 33)  # ramp
    if precision == 16:
        img[3, :] = np.where(np.arange(33) % 2, 32768, 0)  # difference 32768: category 16
    data = encode_jpeg_lossless_sv1(img, precision)
    from pydicom.pixels.decoders.base import get_decoder

    decoder = get_decoder(uids.JPEGLosslessSV1)
    opts = dict(rows=24, columns=33, samples_per_pixel=1, photometric_interpretation="MONOCHROME2",
                pixel_representation=0, bits_allocated=8 if precision <= 8 else 16, bits_stored=precision, number_of_frames=1)  # fmt: skip
    arr, _ = decoder.as_array(pydicom.encaps.encapsulate([data]), **opts)
    assert np.array_equal(arr, img)


def test_huffman_code_lengths_are_limited_to_16_bits():
    from ictview.io.dicom_jpeg_lossless import _huffman_code_lengths

    lengths = _huffman_code_lengths(np.array([2**k for k in range(17)]))  # unlimited: 17+ bits
    assert lengths.max() == 16 and lengths.min() >= 1
    assert (2.0 ** -lengths).sum() < 1.0  # a prefix code with room for no all-ones code
