"""Every PACS command against a real Orthanc, over DICOMweb and DIMSE (C-GET and C-MOVE)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from ictview.cli import main
from ictview.pacs import local_orthanc
from ictview.pacs.connect import connect
from ictview.pacs.pull import pull_studies, staging_dir
from ictview.pacs.push import push_labelset
from ictview.pacs.query import query_studies
from ictview.store.workspace import Workspace

from .conftest import MR_STUDY_UID

PROTOCOLS = ["dicomweb", "dimse-get", "dimse-move"]


def _pull(target, root, uid, site="cq500", role="test", **kw):
    client = connect(target)
    try:
        with Workspace.create(root) as ws:
            return pull_studies(ws, client, [uid], site, role, **kw)
    finally:
        client.close()


def _same_as_file_import(root, exam, tiny_workspace):
    with Workspace.open(root) as ws, Workspace.open(tiny_workspace) as ref:
        got, want = ws.read_volume(exam), ref.read_volume(exam)
        assert got.hu.dtype == want.hu.dtype and np.array_equal(got.hu, want.hu)
        assert got.geometry == want.geometry
        assert list(got.sop_uids) == list(want.sop_uids)
        assert ws.exam(exam).series_uid == ref.exam(exam).series_uid


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse-get"])
def test_echo_and_query_find_the_study_with_its_series(protocol, target_for, study_uid):
    client = connect(target_for(protocol))
    assert "succeeded" in client.echo() or "answers" in client.echo()
    studies = {s.study_uid: s for s in query_studies(client, modality="CT")}
    one = query_studies(client, patient_id="CQ500-CT-1", study_date="20160101-20161231")
    none = query_studies(client, patient_id="CQ500-CT-1", study_date="20170101-")
    client.close()
    assert [s.study_uid for s in one] == [study_uid["CQ500-CT-1"]] and none == []
    st = studies[study_uid["CQ500-CT-1"]]
    assert st.patient_id == "CQ500-CT-1" and st.modalities == ["CT"]
    assert [(s.description, s.instances, s.thickness_mm) for s in st.series] == [
        ("CT 5mm", 8, 5.0), ("CT 0.625mm", 8, 0.625)]
    assert MR_STUDY_UID not in studies  # the CT filter works on the server


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("exam,site,role,instances", [
    ("CQ500-CT-1", "cq500", "test", 16),  # two series: 5 mm chosen, 0.625 mm excluded
    ("KAG-0004", "kaggle", "unlabeled", 8),  # JPEG 2000 on the server: retrieved as stored
])
def test_pull_imports_hu_and_geometry_identical_to_a_file_import(
        protocol, exam, site, role, instances, target_for, study_uid, tiny_workspace, tmp_path):
    report = _pull(target_for(protocol), tmp_path / "ws", study_uid[exam], site, role)
    (item,) = report.studies
    assert (item.status, item.exam, item.slices, item.fetched) == ("imported", exam, 8, instances)
    _same_as_file_import(tmp_path / "ws", exam, tiny_workspace)
    again = _pull(target_for(protocol), tmp_path / "ws", study_uid[exam], site, role)
    assert (again.studies[0].status, again.fetched) == ("already present", 0)


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse-get"])
def test_interrupted_pull_resumes_fetching_only_what_is_missing(
        protocol, target_for, study_uid, tiny_workspace, tmp_path):
    root, uid = tmp_path / "ws", study_uid["ATL-0003"]
    seen = []
    first = _pull(target_for(protocol), root, uid, "atlantis", "labeled",
                  progress=lambda done, total, msg: seen.append(done),
                  cancelled=lambda: max(seen, default=0) >= 3)
    assert first.studies[0].status == "cancelled" and "run the same pull again" in \
        first.studies[0].reason
    with Workspace.open(root) as ws:
        assert ws.exams() == []  # nothing imported from a partial study
        staged = len(list(staging_dir(ws, uid).rglob("*.dcm")))
    assert 3 <= staged < 8
    second = _pull(target_for(protocol), root, uid, "atlantis", "labeled")
    item = second.studies[0]
    assert (item.status, item.fetched, item.already_had) == ("imported", 8 - staged, staged)
    _same_as_file_import(root, "ATL-0003", tiny_workspace)


def _seg_series(orthanc, uid):
    found = [s for s in orthanc.get("/series?expand") if
             s["MainDicomTags"].get("Modality") == "SEG"
             and orthanc.get(f"/studies/{s['ParentStudy']}")["MainDicomTags"]
             ["StudyInstanceUID"] == uid]
    return found


@pytest.mark.parametrize("protocol,exam", [("dicomweb", "ATL-0003"), ("dimse-get", "ATL-0004")])
def test_push_stores_a_seg_listed_under_the_study_and_pulled_back_equal(
        protocol, exam, target_for, orthanc, study_uid, tiny_workspace_copy, tmp_path):
    client = connect(target_for(protocol))
    with Workspace.open(tiny_workspace_copy) as ws:
        report = push_labelset(ws, client, "reference", [exam])
        labels = ws.load_labels("reference", exam)
    client.close()
    (e,) = report.exams
    assert (e.sent, e.accepted, e.refused) == (1, 1, [])
    uid = study_uid[exam]
    segs = _seg_series(orthanc, uid)
    assert len(segs) == 1 and e.seg_uid in {
        orthanc.get(f"/instances/{i}")["MainDicomTags"]["SOPInstanceUID"]
        for i in segs[0]["Instances"]}
    back = _pull(target_for(protocol), tmp_path / "fresh", uid, "atlantis", "labeled",
                 seg_labelset="from-pacs")
    assert back.studies[0].labels == "from-pacs"
    with Workspace.open(tmp_path / "fresh") as ws:
        assert np.array_equal(ws.load_labels("from-pacs", exam), labels)


def test_deidentified_push_leaves_no_identity_and_labels_still_match(
        target_for, orthanc, study_uid, tiny_workspace_copy, tmp_path):
    from ictview.pacs.deid import Deidentifier

    exam = "CQ500-CT-2"
    client = connect(target_for("dimse-get"))
    with Workspace.open(tiny_workspace_copy) as ws:
        report = push_labelset(ws, client, "reference", [exam], deidentify=True,
                               with_images=True)
        labels = ws.load_labels("reference", exam)
        original = ws.exam(exam)
        sops = list(ws.read_volume(exam).sop_uids)
    client.close()
    (e,) = report.exams
    assert e.sent == e.accepted == 1 + len(sops) and e.study_uid != original.study_uid
    # no instance of the de-identified study carries the original names or IDs
    (sid,) = [s["ID"] for s in orthanc.get("/studies?expand")
              if s["MainDicomTags"]["StudyInstanceUID"] == e.study_uid]
    for inst in orthanc.get(f"/studies/{sid}/instances"):
        tags = orthanc.get(f"/instances/{inst['ID']}/simplified-tags")
        text = repr(tags)
        assert original.patient_id not in text and "CQ500" not in text
        assert tags["PatientIdentityRemoved"] == "YES"
    # the de-identified SEG still lies on the de-identified slices: pulled, it reads back equal
    back = _pull(target_for("dicomweb"), tmp_path / "fresh", e.study_uid, seg_labelset="back")
    (item,) = back.studies
    assert item.status == "imported" and item.exam.startswith("ANON-")
    with Workspace.open(tmp_path / "fresh") as ws:
        assert np.array_equal(ws.load_labels("back", item.exam), labels)
        assert ws.read_volume(item.exam).sop_uids != sops
        with Deidentifier(Workspace.open(tiny_workspace_copy)) as deid:
            assert [deid.original_uid(u) for u in ws.read_volume(item.exam).sop_uids] == sops


def test_export_deidentify_writes_anonymous_files(tiny_workspace_copy, tmp_path):
    out = tmp_path / "out"
    rc = main(["export", str(tiny_workspace_copy), "--labelset", "reference", "--format",
               "dicom-seg", "--out", str(out), "--exam", "CQ500-CT-2", "--deidentify"])
    assert rc == 0
    (path,) = out.iterdir()
    assert path.name.startswith("ANON-") and path.name.endswith(".seg.dcm")
    ds = pydicom.dcmread(path)
    assert "CQ500" not in repr(ds) and ds.PatientIdentityRemoved == "YES"
    assert ds.StudyDate != "" and ds.LongitudinalTemporalInformationModified == "MODIFIED"
    nifti = tmp_path / "nifti"
    assert main(["export", str(tiny_workspace_copy), "--labelset", "reference", "--format",
                 "nifti", "--out", str(nifti), "--exam", "CQ500-CT-2", "--deidentify"]) == 0
    names = sorted(p.name for p in nifti.iterdir())
    assert any(n.startswith("ANON-") and n.endswith(".nii.gz") for n in names)
    assert not any("CQ500" in n for n in names)
    # a format it cannot de-identify is refused, never written identified
    assert main(["export", str(tiny_workspace_copy), "--labelset", "reference", "--format",
                 "nnunet", "--out", str(tmp_path / "nn"), "--deidentify"]) == 2
    assert not (tmp_path / "nn").exists()


# ---- failures: one line, nothing changed ------------------------------------------------


def _one_line_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}/dicom-web", "dimse://ORTHANC@127.0.0.1:{port}"])
def test_server_down_is_one_line(url, capsys, pacs_env):
    err = _one_line_error(capsys, ["pacs", "echo", url.format(port=local_orthanc.free_port()),
                                   "--timeout", "3"])
    assert "cannot connect" in err and local_orthanc.PASSWORD not in err


def test_wrong_called_aet_is_one_line(orthanc, capsys):
    err = _one_line_error(capsys, ["pacs", "query", f"dimse://WRONG@127.0.0.1:{orthanc.dicom_port}"])
    assert "association rejected" in err


def test_wrong_password_is_one_line_and_never_echoed(orthanc, capsys, monkeypatch):
    monkeypatch.setenv("ICTVIEW_PACS_USER", local_orthanc.USER)
    monkeypatch.setenv("ICTVIEW_PACS_PASSWORD", "not-the-password-123")
    err = _one_line_error(capsys, ["pacs", "query", orthanc.dicomweb_url])
    assert "HTTP 401" in err and "not-the-password-123" not in err


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse-get"])
def test_non_ct_study_and_unknown_study_fail_in_one_line_and_change_nothing(
        protocol, target_for, tmp_path):
    report = _pull(target_for(protocol), tmp_path / "ws", MR_STUDY_UID)
    assert report.studies[0].status == "failed"
    assert "no CT series (modalities: MR)" in report.studies[0].reason
    unknown = _pull(target_for(protocol), tmp_path / "ws", "1.2.3.4.5.6.7")
    assert "not found on the server" in unknown.studies[0].reason
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.exams() == [] and not (tmp_path / "ws" / "pacs" / "incoming").exists()


def test_pull_cli_reports_imported_exam(orthanc, study_uid, pacs_env, tmp_path, capsys):
    rc = main(["pacs", "pull", orthanc.dicomweb_url, "--study", study_uid["VAL-0003"],
               "--workspace", str(tmp_path / "ws"), "--site", "validation", "--role",
               "validation"])
    out = capsys.readouterr().out
    assert rc == 0 and "imported as exam VAL-0003 (8 slices" in out


def test_push_reads_labels_through_the_blinding_guard(target_for, orthanc, study_uid,
                                                      tiny_workspace_copy):
    """A login blinded by an unfinished test-retest study sends none of its exams' labels:
    named, the push is refused in one line; not named, the exam is left out."""
    from ictview.store.read_guard import BlindingError
    from ictview.study.retest_plan import ExamSelection, plan_study

    with Workspace.open(tiny_workspace_copy, login="kim") as ws:
        plan_study(ws, "s", "dr-lee", ExamSelection(exams=("VAL-0003",)), seed=1,
                   admins=("kim",))
    before = len(_seg_series(orthanc, study_uid["VAL-0003"]))
    client = connect(target_for("dicomweb"))
    with Workspace.open(tiny_workspace_copy, login="someone") as ws:
        with pytest.raises(BlindingError):
            push_labelset(ws, client, "reference", ["VAL-0003"])
        report = push_labelset(ws, client, "reference", ["ATL-0004"])
        assert [e.exam for e in report.exams] == ["ATL-0004"]
    client.close()
    assert len(_seg_series(orthanc, study_uid["VAL-0003"])) == before


@pytest.mark.parametrize("scheme", ["http://127.0.0.1:{port}/dicom-web", "dimse://ORTHANC@127.0.0.1:{port}"])
def test_a_server_that_never_answers_times_out_in_one_line(scheme, capsys, pacs_env):
    import socket

    with socket.socket() as silent:  # accepts connections (backlog), never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = scheme.format(port=silent.getsockname()[1])
        err = _one_line_error(capsys, ["pacs", "query", url, "--timeout", "1"])
    assert "within 1 s" in err


def test_c_move_to_a_destination_the_server_does_not_know_is_one_line(orthanc, study_uid,
                                                                       pacs_env, tmp_path,
                                                                       capsys):
    rc = main(["pacs", "pull", orthanc.dimse_url, "--calling-aet", local_orthanc.CLIENT_AET,
               "--move-aet", "NOBODY", "--listen-port", str(local_orthanc.free_port()),
               "--study", study_uid["VAL-0003"], "--workspace", str(tmp_path / "ws"),
               "--site", "validation", "--role", "validation"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "'NOBODY'" in err, err
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.exams() == []
