"""Server addresses and credentials (no server needed)."""

import pytest

from ictview.errors import IctviewError
from ictview.pacs.target import PASSWORD_ENV, parse_target


def test_dicomweb_address_keeps_root_and_port():
    t = parse_target("http://pacs.example:8042/dicom-web/")
    assert (t.protocol, t.host, t.port, t.url) == ("dicomweb", "pacs.example", 8042,
                                                     "http://pacs.example:8042/dicom-web")
    assert parse_target("https://pacs.example/wado").port == 443


def test_dimse_address_has_called_aet_host_port():
    t = parse_target("dimse://ORTHANC@10.0.0.5:104", calling_aet="ME", move_aet="ME",
                     listen_port=11112)
    assert (t.protocol, t.called_aet, t.host, t.port, t.calling_aet, t.move_aet) == (
        "dimse", "ORTHANC", "10.0.0.5", 104, "ME", "ME")
    assert t.display == "dimse://ORTHANC@10.0.0.5:104"


@pytest.mark.parametrize("bad", ["dimse://10.0.0.5:104", "dimse://AET@host", "ftp://x:1/a",
                                 "nonsense", "dimse://THIS-AET-IS-FAR-TOO-LONG@h:1"])
def test_bad_addresses_are_one_line(bad):
    with pytest.raises(IctviewError) as e:
        parse_target(bad)
    assert "\n" not in str(e.value)


def test_move_needs_a_listen_port():
    with pytest.raises(IctviewError, match="--listen-port"):
        parse_target("dimse://A@h:104", move_aet="ME")


def test_credentials_never_in_the_address_nor_in_messages(monkeypatch):
    with pytest.raises(IctviewError) as e:
        parse_target("http://bob:hunter2@pacs:8042/dicom-web")
    assert "hunter2" not in str(e.value)
    monkeypatch.setenv(PASSWORD_ENV, "hunter2")
    t = parse_target("http://pacs:8042/dicom-web", user="bob")
    assert t.password == "hunter2" and "hunter2" not in repr(t) and "hunter2" not in t.display
