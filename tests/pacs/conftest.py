"""A real Orthanc for the PACS tests: started once per session on free 127.0.0.1 ports
with a temporary configuration (ictview.pacs.local_orthanc), loaded with tiny synthetic
studies through its REST API, stopped at the end. Without Orthanc the tests are skipped
with the reason printed (never faked)."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from ictview.pacs import local_orthanc

# the studies the server holds: (site, exam folder)
UPLOADED = [("cq500", "CQ500-CT-1"), ("cq500", "CQ500-CT-2"), ("atlantis", "ATL-0003"),
            ("atlantis", "ATL-0004"), ("validation", "VAL-0003"),
            ("kaggle", "KAG-0004")]  # KAG-0004 is stored JPEG 2000
MR_STUDY_UID = "1.2.826.0.1.3680043.8.498.1999"


def _mr_study(synth: Path, out: Path) -> Path:
    """Two slices of a CT series relabelled as an MR study: a study ictview must refuse."""
    out.mkdir(parents=True, exist_ok=True)
    files = sorted((synth / "validation" / "dicom" / "VAL-0001").rglob("*.dcm"))[:2]
    series_uid = generate_uid()
    for i, f in enumerate(files):
        ds = pydicom.dcmread(f)
        ds = copy.deepcopy(ds)
        ds.Modality = "MR"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        ds.StudyInstanceUID, ds.SeriesInstanceUID = MR_STUDY_UID, series_uid
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.PatientID = "MR-PATIENT"
        ds.save_as(out / f"mr{i}.dcm", enforce_file_format=True)
    return out


@pytest.fixture(scope="session")
def orthanc(synth_tiny, tmp_path_factory):
    why = local_orthanc.missing()
    if why:
        warnings.warn(f"PACS tests SKIPPED: {why}")
        pytest.skip(f"PACS tests against a real server SKIPPED: {why}")
    server = local_orthanc.LocalOrthanc.start(tmp_path_factory.mktemp("orthanc"))
    try:
        folders = [synth_tiny / site / "dicom" / exam for site, exam in UPLOADED]
        folders.append(_mr_study(synth_tiny, tmp_path_factory.mktemp("mr")))
        server.upload(folders)
        yield server
    finally:
        server.stop()


@pytest.fixture
def pacs_env(monkeypatch):
    """The server's credentials in the environment, as a user would set them."""
    from ictview.pacs.target import PASSWORD_ENV, USER_ENV

    monkeypatch.setenv(USER_ENV, local_orthanc.USER)
    monkeypatch.setenv(PASSWORD_ENV, local_orthanc.PASSWORD)


@pytest.fixture
def target_for(orthanc, pacs_env):
    """target_for(protocol) -> Target, protocol in dicomweb | dimse-get | dimse-move."""
    from ictview.pacs.target import parse_target

    def make(protocol: str):
        if protocol == "dicomweb":
            return parse_target(orthanc.dicomweb_url)
        if protocol == "dimse-get":
            return parse_target(orthanc.dimse_url, calling_aet=local_orthanc.CLIENT_AET)
        return parse_target(orthanc.dimse_url, calling_aet=local_orthanc.CLIENT_AET,
                            move_aet=local_orthanc.CLIENT_AET, listen_port=orthanc.scp_port)

    return make


@pytest.fixture(scope="session")
def study_uid(tiny_workspace):
    """exam name -> Study Instance UID, from the direct file import."""
    from ictview.store.workspace import Workspace

    with Workspace.open(tiny_workspace) as ws:
        return {e.name: e.study_uid for e in ws.exams()}
