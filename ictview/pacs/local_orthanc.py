"""A private Orthanc server on 127.0.0.1 for the tests and `ictview bench pacs`.

It runs Debian's `Orthanc` binary (`apt-get install orthanc orthanc-dicomweb`) with a
temporary JSON configuration: storage in a temporary folder, the DICOMweb plugin on,
HTTP and DICOM ports chosen free, the called AE title checked, HTTP basic
authentication, and a modality entry for our own storage SCP (C-MOVE, C-GET). A system
Orthanc service on 8042/4242 is left alone.
"""

from __future__ import annotations

import glob
import json
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ictview.errors import IctviewError

PLUGIN_GLOBS = ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
                "/usr/lib/orthanc/libOrthancDicomWeb.so*",
                "/usr/lib/*/orthanc/libOrthancDicomWeb.so*")
AET = "ORTHANC"
CLIENT_AET = "ICTVIEW"
USER, PASSWORD = "ictview", "pacs-test-secret"


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or next(
        (p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if Path(p).exists()), None)


def dicomweb_plugin() -> str | None:
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def missing() -> str | None:
    """Why a local Orthanc cannot run here (None when it can)."""
    if orthanc_binary() is None:
        return "Orthanc is not installed (apt-get install orthanc orthanc-dicomweb)"
    if dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LocalOrthanc:
    folder: Path
    http_port: int
    dicom_port: int
    scp_port: int  # where the modality CLIENT_AET (our storage SCP) listens
    process: subprocess.Popen | None = None
    version: str = ""

    @property
    def rest(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.rest}/dicom-web"

    @property
    def dimse_url(self) -> str:
        return f"dimse://{AET}@127.0.0.1:{self.dicom_port}"

    @classmethod
    def start(cls, folder: Path, timeout_s: float = 60.0) -> "LocalOrthanc":
        why = missing()
        if why:
            raise IctviewError(why)
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        server = cls(folder, free_port(), free_port(), free_port())
        config = {
            "Name": "ictview-test",
            "StorageDirectory": str(folder / "storage"),
            "IndexDirectory": str(folder / "storage"),
            "HttpPort": server.http_port,
            "DicomPort": server.dicom_port,
            "DicomAet": AET,
            "DicomCheckCalledAet": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [dicomweb_plugin()],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "Host": "127.0.0.1"},
            "DicomModalities": {"ictview": {"AET": CLIENT_AET, "Host": "127.0.0.1",
                                            "Port": server.scp_port}},
            "HttpCompressionEnabled": False,
            "StorageCompression": False,
            "ConcurrentJobs": 2,
        }
        cfg = folder / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=1))
        log = open(folder / "orthanc.log", "wb")
        server.process = subprocess.Popen([orthanc_binary(), str(cfg)], stdout=log,
                                          stderr=subprocess.STDOUT, cwd=folder)
        log.close()
        server._wait_ready(timeout_s)
        return server

    def _session(self):
        import requests

        s = requests.Session()
        s.auth = (USER, PASSWORD)
        return s

    def _wait_ready(self, timeout_s: float) -> None:
        import requests

        deadline = time.monotonic() + timeout_s
        with self._session() as s:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    tail = (self.folder / "orthanc.log").read_text(errors="replace")[-300:]
                    raise IctviewError(f"Orthanc exited at start ({tail.splitlines()[-1:]})")
                try:
                    r = s.get(f"{self.rest}/system", timeout=2)
                    if r.ok:
                        self.version = r.json().get("Version", "")
                        return
                except requests.RequestException:
                    pass
                time.sleep(0.2)
        self.stop()
        raise IctviewError(f"Orthanc did not answer within {timeout_s:g} s")

    def upload(self, paths) -> int:
        """POST every DICOM file under `paths` to /instances; returns how many were stored."""
        n = 0
        with self._session() as s:
            for root in paths:
                root = Path(root)
                files = [root] if root.is_file() else sorted(p for p in root.rglob("*")
                                                             if p.is_file())
                for f in files:
                    r = s.post(f"{self.rest}/instances", data=f.read_bytes(), timeout=30)
                    r.raise_for_status()
                    n += 1
        return n

    def get(self, path: str):
        with self._session() as s:
            r = s.get(f"{self.rest}{path}", timeout=30)
            r.raise_for_status()
            return r.json()

    def delete(self, path: str) -> None:
        with self._session() as s:
            s.delete(f"{self.rest}{path}", timeout=30).raise_for_status()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> "LocalOrthanc":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
