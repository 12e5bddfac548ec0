"""No silent wrong HU or geometry: implausible rescale / spacing values exclude the series
with a one-line reason naming the tag and value, mixed modalities are reported on the exam,
and no tag value can make an exam's file name invalid. Real DICOM edited with pydicom,
imported into a real workspace."""

from __future__ import annotations

import warnings

import numpy as np
import pydicom
import pytest

from ictview.errors import IctviewError
from ictview.io.dicom_series import choose_series, read_series, scan
from ictview.io.dicom_write import deterministic_uid
from ictview.io.importers import ImportOptions, MaskSource, import_source
from ictview.store.workspace import Workspace


def edit(paths, fn):
    """Change written files with pydicom (values the writer refuses to produce)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values we write
        for p in paths:
            ds = pydicom.dcmread(p)
            fn(ds)
            ds.save_as(p)


def import_folder(tmp_path, *folders, masks=()):
    ws = Workspace.create(tmp_path / "ws")
    opts = ImportOptions(site="s", role="labeled", masks=list(masks))
    report = import_source(ws, list(folders), opts)
    return ws, report


def import_beside_a_good_study(tmp_path, write_series, bad_folder):
    """Import the bad series next to a good study: the report lists the exclusion. Alone,
    the import imports nothing and its one-line error must say why."""
    good = write_series(n=3, patient_id="GOOD", study_uid=deterministic_uid("good"))
    ws, report = import_folder(tmp_path, bad_folder, good.folder)
    assert report.imported == ["GOOD"], report.failed
    with pytest.raises(IctviewError) as err:
        import_folder(tmp_path / "alone", bad_folder)
    assert "\n" not in str(err.value)
    return report, str(err.value)


def only_exclusion(folder):
    (s,) = scan([folder]).series
    choice = choose_series([s])
    assert choice.chosen is None, "the series must be excluded"
    ((_, reason),) = choice.excluded
    assert "\n" not in reason
    return reason


# ---------------------------------------------------------------- rescale


@pytest.mark.parametrize("slope, shown", [
    ("0", "RescaleSlope 0"), ("1e30", "RescaleSlope 1e+30"), ("1000", "RescaleSlope 1000"),
    ("NaN", "RescaleSlope nan"), ("inf", "RescaleSlope inf"), ("-1", "RescaleSlope -1"),
])
def test_implausible_slope_excludes_the_series_naming_tag_and_value(write_series, tmp_path,
                                                                    slope, shown):
    w = write_series(n=4)
    edit(w.paths, lambda ds: setattr(ds, "RescaleSlope", slope))
    reason = only_exclusion(w.folder)
    assert shown in reason and "missing" not in reason
    report, alone = import_beside_a_good_study(tmp_path, write_series, w.folder)
    assert any(shown in e for e in report.excluded_series), report.excluded_series
    # the text report says why, not only "no series to interpret"
    (failed,) = report.failed
    assert shown in failed and "\n" not in failed
    assert shown in alone


def test_nan_intercept_is_not_reported_missing(write_series):
    w = write_series(n=3)
    edit(w.paths, lambda ds: setattr(ds, "RescaleIntercept", "NaN"))
    reason = only_exclusion(w.folder)
    assert "RescaleIntercept nan" in reason and "missing" not in reason


def test_plausible_unusual_slopes_still_read(write_series, phantom):
    # Siemens' extended CT scale stores HU / 10 (slope 10, intercept -10240)
    hu = (phantom(3, (10, 12), lo=-1020, hi=3000) // 10 * 10).astype(np.int16)
    w = write_series(hu, rescale_slope=10.0, rescale_intercept=-10240.0)
    (s,) = scan([w.folder]).series
    assert choose_series([s]).chosen is not None
    assert np.array_equal(read_series(s).hu, hu)


def test_missing_rescale_is_still_taken_as_hu_with_a_warning(write_series):
    w = write_series(n=3, rescale_intercept=0.0, pixel_representation=1)
    edit(w.paths, lambda ds: (delattr(ds, "RescaleSlope"), delattr(ds, "RescaleIntercept")))
    (s,) = scan([w.folder]).series
    vol = read_series(choose_series([s]).chosen)
    assert np.array_equal(vol.hu, w.hu)
    assert any("RescaleSlope/RescaleIntercept missing" in m for m in vol.warnings)


def test_values_saturating_int16_exclude_the_series(write_series, tmp_path):
    w = write_series(n=3)
    edit(w.paths, lambda ds: setattr(ds, "RescaleIntercept", "40000"))  # air becomes 38976 HU
    report, alone = import_beside_a_good_study(tmp_path, write_series, w.folder)
    (excluded,) = report.excluded_series
    assert "saturate" in excluded and "RescaleIntercept 40000" in excluded, excluded
    assert "saturate" in report.failed[0] and "saturate" in alone


def test_saturating_series_falls_back_to_the_next_series(write_series, tmp_path):
    study = tmp_path / "study"
    bad = write_series(n=8, folder=study)  # more slices: preferred until it is read
    good = write_series(n=4, folder=study, seed=1)
    edit(bad.paths, lambda ds: setattr(ds, "RescaleIntercept", "40000"))
    ws, report = import_folder(tmp_path, study)
    (name,) = report.imported
    assert ws.exam(name).series_uid == good.spec.series_uid
    assert np.array_equal(ws.read_volume(name).hu, good.hu)
    assert any("saturate" in e for e in report.excluded_series), report.excluded_series


def test_a_few_clipped_voxels_are_a_warning(write_series):
    hu = np.full((3, 64, 64), 40, np.int16)
    w = write_series(hu, pixel_representation=0, rescale_intercept=-1024.0)
    # one stored value far above anything CT writes: 65535 - 1024 does not fit int16
    def poke(ds):
        a = ds.pixel_array.copy()
        a[0, 0] = 65535
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelData = a.astype("<u2").tobytes()
    edit(w.paths[:1], poke)
    (s,) = scan([w.folder]).series
    vol = read_series(s)
    assert vol.hu[:, 0, 0].max() == 32767
    assert any("1 voxel(s)" in m and "clipped" in m for m in vol.warnings), vol.warnings


# ---------------------------------------------------------------- geometry


def test_huge_pixel_spacing_excludes_the_series(write_series, tmp_path):
    w = write_series(n=4)
    edit(w.paths, lambda ds: setattr(ds, "PixelSpacing", ["1e300", "1e300"]))
    reason = only_exclusion(w.folder)
    assert "PixelSpacing 1e+300" in reason
    report, alone = import_beside_a_good_study(tmp_path, write_series, w.folder)
    assert "PixelSpacing 1e+300" in report.failed[0] and "PixelSpacing 1e+300" in alone


def test_tiny_pixel_spacing_excludes_the_series(write_series):
    w = write_series(n=4)
    edit(w.paths, lambda ds: setattr(ds, "PixelSpacing", ["0.001", "0.001"]))
    assert "PixelSpacing 0.001" in only_exclusion(w.folder)


def test_implausible_slice_spacing_excludes_the_series(write_series, axial_geometry):
    w = write_series(n=4, geometry=axial_geometry(step=(0.0, 0.0, 500.0)))
    reason = only_exclusion(w.folder)
    assert "slice spacing 500 mm" in reason and "ImagePositionPatient" in reason


def test_implausible_slice_thickness_excludes_the_series(write_series):
    w = write_series(n=4)
    edit(w.paths, lambda ds: setattr(ds, "SliceThickness", "1e300"))
    assert "SliceThickness 1e+300" in only_exclusion(w.folder)


def test_mixed_ct_and_mr_slices_are_reported_and_spacing_is_the_ct_slices(write_series, tmp_path):
    w = write_series(n=10)  # 5 mm steps
    edit(w.paths[1::2], lambda ds: setattr(ds, "Modality", "MR"))
    ws, report = import_folder(tmp_path, w.folder)
    (name,) = report.imported
    exam = ws.exam(name)
    assert exam.n_slices == 5
    # the volume holds the CT slices only, so its spacing is theirs (10 mm), and says so
    assert exam.spacing[0] == pytest.approx(10.0)
    vol = ws.read_volume(name)
    assert np.array_equal(vol.hu, w.hu[0::2])
    mixed = [m for m in exam.warnings if "mixed modalities" in m]
    assert len(mixed) == 1 and "5 MR" in mixed[0], exam.warnings
    assert any("mixed modalities" in m for m in report.exam_warnings)


# ---------------------------------------------------------------- names from tags


def test_a_300_character_patient_id_imports_under_a_bounded_unique_name(write_series, tmp_path):
    long_a = "P" * 299 + "A"
    long_b = "P" * 299 + "B"  # same first 299 characters: names must still differ
    a = write_series(n=3, patient_id=long_a, study_uid=deterministic_uid("a"))
    b = write_series(n=3, patient_id=long_b, study_uid=deterministic_uid("b"))
    odd = write_series(n=3, patient_id="../../CON:*?" + "é" * 200,
                       study_uid=deterministic_uid("c"))
    masks = tmp_path / "masks"
    masks.mkdir()
    ws, report = import_folder(tmp_path, a.folder, b.folder, odd.folder,
                               masks=[MaskSource("reference", masks)])
    assert not report.failed, report.failed
    names = report.imported
    assert len(names) == 3 and len(set(names)) == 3
    for n in names:
        assert len(n) <= 64 and all(c.isalnum() or c in "._-" for c in n) and n.isascii()
        assert ws.volume_path(n).exists() and ws.volume_path(n).parent == ws.root / "volumes"
    assert {ws.exam(n).patient_id for n in names} == {long_a, long_b, odd.spec.patient_id}
    # the same ID always gives the same name (re-imports and label files find it)
    again, _ = import_folder(tmp_path / "again", a.folder)
    assert again.exams()[0].name in names
