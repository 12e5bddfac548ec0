"""File > PACS against a real Orthanc: search, retrieve into a site, send labels, errors."""

from __future__ import annotations

import warnings

import pytest

from ictview.pacs import local_orthanc
from ictview.store.workspace import Workspace


@pytest.fixture(scope="module")
def server(synth_tiny, tmp_path_factory):
    why = local_orthanc.missing()
    if why:
        warnings.warn(f"PACS dialog tests SKIPPED: {why}")
        pytest.skip(f"PACS dialog tests against a real server SKIPPED: {why}")
    s = local_orthanc.LocalOrthanc.start(tmp_path_factory.mktemp("orthanc-gui"))
    try:
        s.upload([synth_tiny / "atlantis" / "dicom" / "ATL-0004",
                  synth_tiny / "validation" / "dicom" / "VAL-0002"])
        yield s
    finally:
        s.stop()


def _dialog(qtbot, root, url, **kw):
    from ictview.gui.pacs.pacs_dialog import PacsDialog

    d = PacsDialog(None, root, **kw)
    qtbot.addWidget(d)
    d.url.setText(url)
    d.user.setText(local_orthanc.USER)
    d.password.setText(local_orthanc.PASSWORD)
    return d


def _wait(qtbot, d):
    qtbot.waitUntil(lambda: not d.busy(), timeout=60_000)
    d.wait()


@pytest.mark.parametrize("protocol", ["dicomweb", "dimse"])
def test_search_lists_the_studies_and_retrieve_imports_into_the_chosen_site(
        protocol, server, qtbot, tmp_path):
    url = server.dicomweb_url if protocol == "dicomweb" else server.dimse_url
    d = _dialog(qtbot, tmp_path / "ws", url, sites={"outside": "test"})
    d.calling_aet.setText(local_orthanc.CLIENT_AET)
    d.query_button.click()
    _wait(qtbot, d)
    assert d.table.rowCount() == 2, d.status.text()
    patients = {d.table.item(r, 1).text(): r for r in range(d.table.rowCount())}
    assert set(patients) == {"ATL-0004", "VAL-0002"}
    assert "CT" in d.table.item(patients["ATL-0004"], 4).text()
    assert "8" in d.table.item(patients["ATL-0004"], 4).text()  # 8 slices listed
    d.table.selectRow(patients["VAL-0002"])
    d.site.setCurrentText("outside")
    assert d.role.currentText() == "test" and d.retrieve_button.isEnabled()
    with qtbot.waitSignal(d.imported, timeout=60_000) as got:
        d.retrieve_button.click()
    _wait(qtbot, d)
    assert got.args == [["VAL-0002"]] and d.status.text().startswith("Imported 1 exam")
    with Workspace.open(tmp_path / "ws") as ws:
        assert [e.name for e in ws.exams("outside")] == ["VAL-0002"]


def test_send_labels_reports_what_the_server_accepted(server, qtbot, tiny_workspace_copy):
    d = _dialog(qtbot, tiny_workspace_copy, server.dicomweb_url, labelset="reference",
                labelsets=["reference"])
    d.send_button.click()
    _wait(qtbot, d)
    # only ATL-0004's study is on this server: the others' SEGs reference unknown series but
    # Orthanc stores a SEG whatever its references, so every labelled exam is accepted
    assert d.status.text().startswith("The server accepted"), d.status.text()
    assert "without hemorrhage not sent" in d.status.text()


def test_server_down_is_one_red_line(qtbot, tmp_path):
    d = _dialog(qtbot, tmp_path / "ws", f"http://127.0.0.1:{local_orthanc.free_port()}/dicom-web")
    d.query_button.click()
    _wait(qtbot, d)
    assert "cannot connect" in d.status.text() and "\n" not in d.status.text()
    assert "e07a6a" in d.status.styleSheet() and d.table.rowCount() == 0
    assert local_orthanc.PASSWORD not in d.status.text()


def test_cancel_keeps_the_workspace_as_it_was_and_the_next_retrieve_finishes(
        server, qtbot, tmp_path):
    d = _dialog(qtbot, tmp_path / "ws", server.dicomweb_url, sites={"atl": "labeled"})
    d.query_button.click()
    _wait(qtbot, d)
    row = next(r for r in range(d.table.rowCount()) if d.table.item(r, 1).text() == "ATL-0004")
    d.table.selectRow(row)
    d.site.setCurrentText("atl")
    d.retrieve_button.click()
    assert d.cancel_button.isEnabled() and not d.retrieve_button.isEnabled()
    d.cancel_button.click()  # before the first instance can have arrived
    _wait(qtbot, d)
    assert d.status.text().startswith("cancelled:") and "run the same pull again" in \
        d.status.text()
    with Workspace.open(tmp_path / "ws") as ws:
        assert ws.exams() == []
    with qtbot.waitSignal(d.imported, timeout=60_000):
        d.retrieve_button.click()
    _wait(qtbot, d)
    assert d.status.text().startswith("Imported 1 exam")
