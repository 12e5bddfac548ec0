"""Series scanning, choice and reading on real DICOM files written by the writer."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pydicom
import pydicom.uid as uids
import pytest

from ictview.errors import IctviewError
from ictview.io.dicom_series import choose_series, read_series, scan
from ictview.io.dicom_write import can_encode


def one_series(folder):
    result = scan([folder])
    assert len(result.series) == 1, (result.series, result.skipped)
    return result.series[0]


def edit(paths, fn):
    """Change written files with pydicom (for cases the writer never produces)."""
    for p in paths:
        ds = pydicom.dcmread(p)
        fn(ds)
        ds.save_as(p)


# ---------------------------------------------------------------- order


def test_order_follows_positions_not_file_names_or_instance_numbers(write_series):
    rng = np.random.default_rng(1)
    n = 7
    names = [f"{int(i):03d}.dcm" for i in rng.permutation(n)]  # shuffled file names
    lying = [int(i) + 1 for i in rng.permutation(n)]  # InstanceNumber that disagrees
    w = write_series(n=n, file_names=names, instance_numbers=lying)
    vol = read_series(one_series(w.folder))
    assert np.array_equal(vol.hu, w.hu)
    assert vol.sop_uids == w.spec.sop_uids
    assert vol.geometry == w.geometry
    assert vol.warnings == []


def test_step_against_the_normal_is_reversed(write_series, axial_geometry):
    """Slices written head to feet: slice 0 must still be the lowest along the normal."""
    w = write_series(n=5, geometry=axial_geometry(step=(0.0, 0.0, -2.5), origin=(0.0, 0.0, 50.0)))
    vol = read_series(one_series(w.folder))
    assert np.array_equal(vol.hu, w.hu[::-1])
    assert vol.sop_uids == w.spec.sop_uids[::-1]
    assert vol.geometry.origin == w.geometry.slice_position(4)
    assert np.allclose(vol.geometry.slice_step, (0.0, 0.0, 2.5))


def test_flipped_orientation_sorts_along_its_own_normal(write_series, axial_geometry):
    # col_dir -y: normal -z, so increasing z is decreasing position along the normal
    g = axial_geometry(col=(0.0, -1.0, 0.0), step=(0.0, 0.0, 3.0))
    w = write_series(n=4, geometry=g)
    vol = read_series(one_series(w.folder))
    assert np.array_equal(vol.hu, w.hu[::-1])
    assert np.allclose(vol.geometry.slice_step, (0.0, 0.0, -3.0))
    assert np.dot(vol.geometry.slice_step, vol.geometry.normal) > 0


# ---------------------------------------------------------------- HU


@pytest.mark.parametrize(
    "pixel_representation, intercept, slope, padding",
    [(0, -1024.0, 1.0, None), (1, -1024.0, 1.0, -2000), (1, 0.0, 1.0, None), (0, -1000.0, 0.5, None),
     (1, -8192.0, 4.0, None), (0, -2048.0, 1.0, 0), (0, -32768.0, 1.0, None)],
)  # fmt: skip
def test_hu_round_trip(write_series, phantom, pixel_representation, intercept, slope, padding):
    hu = phantom(3, (12, 14), lo=-1024, hi=3000)
    if slope != 1.0:
        hu = ((hu // int(slope * 2)) * int(slope * 2)).astype(np.int16)  # representable values
        hu = np.maximum(hu, int(intercept) + int(slope * 2) * 2).astype(np.int16)
    expected = hu.copy()
    if padding is not None:
        pad_hu = int(padding * slope + intercept)
        hu[:, -3:, -3:] = pad_hu
        expected[:, -3:, -3:] = -1024
    w = write_series(hu, pixel_representation=pixel_representation, rescale_intercept=intercept,
                     rescale_slope=slope, pixel_padding_value=padding)  # fmt: skip
    vol = read_series(one_series(w.folder))
    assert vol.hu.dtype == np.int16
    assert np.array_equal(vol.hu, expected)


def test_padding_range_limit(write_series, phantom):
    hu = phantom(2, (10, 10), lo=-1000, hi=1500)
    hu[:, 0, :5] = [-3024, -2800, -2524, -2523, -2000]  # stored -2000, -1776, -1500, -1499, -976
    w = write_series(hu, pixel_representation=1, rescale_intercept=-1024.0, pixel_padding_value=-2000)
    edit(w.paths, lambda ds: ds.add_new(0x00280121, "SS", -1500))
    vol = read_series(one_series(w.folder))
    assert vol.hu[:, 0, :5].tolist() == [[-1024, -1024, -1024, -2523, -2000]] * 2


@pytest.mark.parametrize("signed", [False, True])
def test_bits_above_bits_stored_are_ignored(write_series, phantom, signed):
    """Old scanners leave overlay bits (or no sign extension) above HighBit."""
    hu = phantom(2, (10, 10), lo=-1000, hi=1000)
    kw = dict(pixel_representation=1, rescale_intercept=0.0) if signed else {}
    w = write_series(hu, **kw)

    def garble(ds):
        assert ds.BitsStored == 12
        raw = np.frombuffer(ds.PixelData, dtype="<u2").copy()
        raw = (raw & 0x0FFF) | 0x5000 if not signed else raw & 0x0FFF  # junk / no sign bits
        ds.PixelData = raw.tobytes()

    edit(w.paths, garble)
    vol = read_series(one_series(w.folder))
    assert np.array_equal(vol.hu, hu)


# ---------------------------------------------------------------- geometry checks


def test_gantry_tilt_is_reported(write_series, axial_geometry):
    c, s = np.cos(np.radians(15)), np.sin(np.radians(15))
    w = write_series(n=5, geometry=axial_geometry(step=(0.0, 5 * s, 5 * c)))
    vol = read_series(one_series(w.folder))
    assert np.array_equal(vol.hu, w.hu)
    assert any("gantry tilt 15.0 degrees" in m for m in vol.warnings), vol.warnings
    assert np.allclose(vol.geometry.slice_step, w.geometry.slice_step)
    assert vol.geometry.tilt_degrees == pytest.approx(15.0, abs=0.01)


def test_header_only_gantry_tilt_is_reported(write_series):
    w = write_series(n=3)
    edit(w.paths, lambda ds: setattr(ds, "GantryDetectorTilt", "12"))
    vol = read_series(one_series(w.folder))
    assert any("GantryDetectorTilt" in m and "not sheared" in m for m in vol.warnings), vol.warnings


def test_missing_slice_is_reported_with_its_place(write_series):
    w = write_series(n=8)
    os.remove(w.paths[4])  # z = 10 + 4*5 = 30 mm
    vol = read_series(one_series(w.folder))
    assert vol.hu.shape[0] == 7
    assert np.array_equal(vol.hu, np.delete(w.hu, 4, axis=0))
    msg = [m for m in vol.warnings if m.startswith("missing slices")]
    assert msg and "25.00 and 35.00" in msg[0] and "about 1 slice" in msg[0], vol.warnings


def test_uneven_spacing_is_reported(write_series, axial_geometry, tmp_path):
    folder = tmp_path / "mixed"
    a = write_series(n=3, folder=folder, geometry=axial_geometry(origin=(0, 0, 0)))
    write_series(n=2, folder=folder, seed=1, geometry=axial_geometry(origin=(0, 0, 13)),
                 series_uid=a.spec.series_uid)  # fmt: skip
    vol = read_series(one_series(folder))
    assert vol.hu.shape[0] == 5
    assert any(m.startswith("uneven spacing") and "3.00" in m for m in vol.warnings), vol.warnings


def test_duplicate_positions_keep_one(write_series, tmp_path):
    folder = tmp_path / "dups"
    a = write_series(n=4, folder=folder)
    write_series(a.hu[:2], folder=folder, series_uid=a.spec.series_uid)  # same positions, new SOPs
    vol = read_series(one_series(folder))
    assert np.array_equal(vol.hu, a.hu)
    assert any("duplicate positions: dropped 2 slice(s)" in m for m in vol.warnings), vol.warnings


def test_mixed_matrix_sizes_keep_the_majority(write_series, axial_geometry, tmp_path):
    folder = tmp_path / "sizes"
    a = write_series(n=6, shape=(20, 24), folder=folder)
    write_series(n=2, shape=(16, 16), folder=folder, series_uid=a.spec.series_uid,
                 geometry=axial_geometry(origin=(-60.0, -50.0, 40.0)))  # fmt: skip
    vol = read_series(one_series(folder))
    assert vol.hu.shape == (6, 20, 24)
    assert np.array_equal(vol.hu, a.hu)
    assert any("mixed matrix sizes: kept 6 slices of 20x24, dropped 2 of 16x16" in m for m in vol.warnings)


def test_inconsistent_orientation_keeps_the_majority(write_series, axial_geometry, tmp_path):
    folder = tmp_path / "orient"
    a = write_series(n=5, folder=folder)
    odd = axial_geometry(row=(0.0, 1.0, 0.0), col=(0.0, 0.0, -1.0), origin=(0.0, 0.0, 100.0), step=(5.0, 0, 0))
    write_series(n=2, folder=folder, series_uid=a.spec.series_uid, geometry=odd)
    vol = read_series(one_series(folder))
    assert np.array_equal(vol.hu, a.hu)
    assert any(m.startswith("inconsistent orientation: dropped 2 of 7") for m in vol.warnings), vol.warnings


# ---------------------------------------------------------------- choice


def test_choose_series_excludes_localizer_thin_and_non_axial(write_series, axial_geometry, tmp_path):
    study = tmp_path / "study"
    coronal = axial_geometry(row=(1.0, 0.0, 0.0), col=(0.0, 0.0, -1.0), step=(0.0, 1.0, 0.0))
    write_series(n=1, shape=(32, 32), folder=study, geometry=coronal, series_description="SCOUT",
                 image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))  # fmt: skip
    write_series(n=2, shape=(32, 32), folder=study, geometry=coronal, image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    thin = write_series(n=10, folder=study, geometry=axial_geometry(step=(0.0, 0.0, 0.625)),
                        slice_thickness=0.625, series_description="HEAD 0.625mm")  # fmt: skip
    main = write_series(n=6, folder=study, slice_thickness=5.0)
    sagittal = axial_geometry(row=(0.0, 1.0, 0.0), col=(0.0, 0.0, -1.0), step=(1.0, 0.0, 0.0))
    write_series(n=8, folder=study, geometry=sagittal, image_type=("DERIVED", "SECONDARY", "REFORMATTED"))
    derived = write_series(n=9, folder=study, slice_thickness=5.0, image_type=("DERIVED", "SECONDARY", "AXIAL"),
                           geometry=axial_geometry(step=(0.0, 0.0, 4.0)))  # fmt: skip
    result = scan([study])
    assert not result.skipped
    (series,) = result.studies().values()
    assert len(series) == 6
    choice = choose_series(series)
    assert choice.chosen is not None and choice.chosen.series_uid == main.spec.series_uid
    reasons = {s.series_uid: r for s, r in choice.excluded}
    assert len(reasons) == 5
    assert reasons[thin.spec.series_uid] == "slice thickness 0.625 mm < 2 mm"
    assert sum("localizer" in r for r in reasons.values()) == 2
    assert sum(r.startswith("not axial") for r in reasons.values()) == 1
    assert reasons[derived.spec.series_uid].startswith("another series preferred")
    # with a lower threshold the thin series competes and wins on slice count
    assert choose_series(series, min_thickness_mm=0.5).chosen.series_uid == thin.spec.series_uid


def test_choose_series_with_nothing_usable(write_series, axial_geometry):
    thin = write_series(n=3, slice_thickness=1.0, geometry=axial_geometry(step=(0.0, 0.0, 1.0)))
    choice = choose_series(scan([thin.folder]).series)
    assert choice.chosen is None and len(choice.excluded) == 1


def test_missing_slice_thickness_uses_position_spacing(write_series, axial_geometry):
    w = write_series(n=4, geometry=axial_geometry(step=(0.0, 0.0, 1.0)))
    edit(w.paths, lambda ds: delattr(ds, "SliceThickness"))
    (s,) = scan([w.folder]).series
    assert s.slice_thickness is None
    assert choose_series([s]).excluded[0][1] == "slice thickness 1 mm < 2 mm"


# ---------------------------------------------------------------- compressed syntaxes


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param(ts, id=ts.name.split(",")[0],
                     marks=pytest.mark.skipif(not can_encode(ts), reason=f"no encoder installed for {ts.name}"))
        for ts in (uids.ImplicitVRLittleEndian, uids.JPEGLosslessSV1, uids.JPEG2000Lossless,
                   uids.JPEGLSLossless, uids.RLELossless)
    ],
)  # fmt: skip
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_compressed_syntaxes_decode_like_uncompressed(write_series, phantom, ts, signed):
    hu = phantom(3, (32, 40), lo=-1024, hi=3000)
    kw = dict(pixel_representation=1, pixel_padding_value=-2000) if signed else {}
    if signed:
        hu[:, -2:, -2:] = -3024
    plain = read_series(one_series(write_series(hu, **kw).folder))
    packed = read_series(one_series(write_series(hu, transfer_syntax=ts, **kw).folder))
    assert packed.header.sop_uids != plain.header.sop_uids
    assert np.array_equal(packed.hu, plain.hu)
    assert packed.geometry == plain.geometry
    assert packed.meta["transfer_syntax"] == ts


# ---------------------------------------------------------------- scan robustness


def test_scan_skips_what_it_cannot_use_with_one_line_reasons(write_series, tmp_path):
    good = write_series(n=3, folder=tmp_path / "in")
    bad = write_series(n=7, folder=tmp_path / "src")
    d = tmp_path / "in"
    (d / "notes.txt").write_text("not dicom\n")
    (d / "empty.dcm").write_bytes(b"")
    (d / "DICOMDIR").write_bytes(bad.paths[0].read_bytes())
    (d / "head_cut.dcm").write_bytes(bad.paths[1].read_bytes()[:300])
    (d / "pixels_cut.dcm").write_bytes(bad.paths[2].read_bytes()[:-100])
    edits = {
        "mr.dcm": lambda ds: setattr(ds, "Modality", "MR"),
        "no_ipp.dcm": lambda ds: delattr(ds, "ImagePositionPatient"),
        "no_pixels.dcm": lambda ds: delattr(ds, "PixelData"),
        "bad_ipp.dcm": lambda ds: setattr(ds, "ImagePositionPatient", ["1", "2"]),
    }
    for (name, fn), src in zip(edits.items(), bad.paths[3:]):
        ds = pydicom.dcmread(src)
        fn(ds)
        ds.save_as(d / name)
    (d / "copy.dcm").write_bytes(good.paths[0].read_bytes())  # same SOP instance twice

    calls = []
    result = scan([d], progress=lambda i, n: calls.append((i, n)))
    assert [s.series_uid for s in result.series] == [good.spec.series_uid]
    assert len(result.series[0].files) == 3
    reasons = {os.path.basename(s.path): s.reason for s in result.skipped}
    assert all("\n" not in r and r for r in reasons.values())
    expected = {
        "notes.txt": "not a DICOM file", "empty.dcm": "not a DICOM file", "DICOMDIR": "DICOMDIR",
        "head_cut.dcm": "", "pixels_cut.dcm": "pixel data truncated", "mr.dcm": "modality MR",
        "no_ipp.dcm": "missing ImagePositionPatient", "no_pixels.dcm": "no pixel data",
        "bad_ipp.dcm": "invalid ImagePositionPatient", "copy.dcm": "same SOPInstanceUID",
    }  # fmt: skip
    assert set(reasons) == set(expected)
    for name, fragment in expected.items():
        assert fragment in reasons[name], (name, reasons[name])
    assert calls[-1] == (13, 13) and len(calls) == 13


def test_scan_takes_several_roots_and_single_files(write_series, tmp_path):
    a = write_series(n=2)
    b = write_series(n=3)
    result = scan([a.folder, str(b.paths[0]), b.paths[1], tmp_path / "nowhere"])
    assert sorted(len(s.files) for s in result.series) == [2, 2]
    assert [s.reason for s in result.skipped] == ["no such file or folder"]


def test_read_series_without_scan_cache_and_with_stale_files(write_series):
    w = write_series(n=5)
    header = one_series(w.folder)
    fresh = dataclasses.replace(header)  # a header rebuilt elsewhere (e.g. from the catalog)
    assert not hasattr(fresh, "_headers")
    assert np.array_equal(read_series(fresh).hu, read_series(header).hu)

    os.remove(w.paths[0])  # gone after the scan
    vol = read_series(header)
    assert vol.hu.shape[0] == 4 and any("unreadable pixel data" in m for m in vol.warnings)
    vol = read_series(dataclasses.replace(header))
    assert vol.hu.shape[0] == 4 and any("unusable files" in m for m in vol.warnings)
    for p in w.paths[1:]:
        os.remove(p)
    with pytest.raises(IctviewError) as err:
        read_series(header)
    assert "\n" not in str(err.value) and header.series_uid in str(err.value)


def test_meta_and_header_fields(write_series):
    w = write_series(n=2, manufacturer="ACME", model_name="CT9", convolution_kernel="FC21", kvp=100.0,
                     institution_name="General", accession_number="ACC1", series_description="HEAD 5mm")  # fmt: skip
    header = one_series(w.folder)
    assert (header.patient_id, header.accession_number, header.modality) == ("TEST-0001", "ACC1", "CT")
    assert header.is_axial and not header.is_localizer and header.slice_thickness == 5.0
    assert header.image_type == ("ORIGINAL", "PRIMARY", "AXIAL")
    meta = read_series(header).meta
    assert (meta["manufacturer"], meta["model"], meta["kernel"], meta["kvp"]) == ("ACME", "CT9", "FC21", 100.0)
    assert (meta["institution"], meta["slice_thickness"]) == ("General", 5.0)


def test_mutated_files_never_raise_anything_but_ictview_error(write_series, tmp_path):
    """Truncations and byte flips of a real file: skipped, read, or IctviewError; nothing else."""
    src = write_series(n=1, shape=(8, 8)).paths[0].read_bytes()
    rng = np.random.default_rng(0)
    d = tmp_path / "mutants"
    d.mkdir()
    for k, cut in enumerate(range(0, len(src), 23)):
        (d / f"cut{k:03d}").write_bytes(src[:cut])
    for k in range(150):
        b = bytearray(src)
        for pos in rng.integers(0, len(src), size=int(rng.integers(1, 4))):
            b[pos] = int(rng.integers(0, 256))
        (d / f"flip{k:03d}").write_bytes(bytes(b))
    result = scan([d])
    assert all("\n" not in s.reason for s in result.skipped)
    offenders = []
    for s in result.series:
        try:
            read_series(s)
        except IctviewError:
            pass
        except Exception as exc:  # the point of the test: list every other failure
            offenders.append(f"{s.files}: {type(exc).__name__}: {exc}")
    assert not offenders, offenders
