"""Server addresses: `http(s)://host:port/<dicom-web root>` or `dimse://AET@host:port`.

Credentials never travel inside the address (an address is printed in messages);
they come from `--user`/`--password` or the ICTVIEW_PACS_USER / ICTVIEW_PACS_PASSWORD
environment variables, and `Target.display` (what messages show) never contains them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ictview.errors import IctviewError

USER_ENV = "ICTVIEW_PACS_USER"
PASSWORD_ENV = "ICTVIEW_PACS_PASSWORD"
DEFAULT_CALLING_AET = "ICTVIEW"
_AET = re.compile(r"^[ -~]{1,16}$")  # printable ASCII, 16 characters at most (PS3.5 AE VR)


@dataclass(frozen=True)
class Target:
    protocol: str  # "dicomweb" | "dimse"
    host: str
    port: int
    url: str = ""  # dicomweb: scheme://host:port/root, without credentials
    called_aet: str = ""  # dimse: the server's AE title
    calling_aet: str = DEFAULT_CALLING_AET
    move_aet: str = ""  # dimse: C-MOVE destination (empty: C-GET)
    listen_port: int = 0  # dimse C-MOVE: where our storage SCP listens
    user: str = ""
    password: str = field(default="", repr=False)  # never printed
    timeout_s: float = 30.0

    @property
    def display(self) -> str:
        if self.protocol == "dicomweb":
            return self.url
        return f"dimse://{self.called_aet}@{self.host}:{self.port}"


def _check_aet(aet: str, what: str) -> str:
    if not _AET.match(aet) or aet.strip() != aet or "\\" in aet:
        raise IctviewError(f"{what} '{aet}': an AE title is 1-16 printable ASCII characters, "
                           "no backslash, no leading or trailing space")
    return aet


def parse_target(
    address: str,
    *,
    calling_aet: str = DEFAULT_CALLING_AET,
    move_aet: str = "",
    listen_port: int = 0,
    user: str | None = None,
    password: str | None = None,
    timeout_s: float = 30.0,
) -> Target:
    """The server at `address`; IctviewError (one line, no credentials) when malformed."""
    parts = urlsplit(address.strip())
    scheme = parts.scheme.lower()
    if parts.password is not None or (scheme in ("http", "https") and parts.username):
        # the address was given with credentials: say so without repeating them
        raise IctviewError(f"PACS address {scheme}://{parts.hostname or ''}...: do not put "
                           f"credentials in the address; use --user and {PASSWORD_ENV}")
    user = user if user is not None else os.environ.get(USER_ENV, "")
    password = password if password is not None else os.environ.get(PASSWORD_ENV, "")
    if not parts.hostname:
        raise IctviewError(f"PACS address '{address}': expected http(s)://host:port/dicom-web "
                           "or dimse://AET@host:port")
    try:
        port = parts.port
    except ValueError:
        raise IctviewError(f"PACS address '{address}': bad port") from None
    if scheme in ("http", "https"):
        netloc = parts.hostname + (f":{port}" if port else "")
        url = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
        return Target("dicomweb", parts.hostname, port or (443 if scheme == "https" else 80),
                      url=url, calling_aet=calling_aet, user=user, password=password,
                      timeout_s=timeout_s)
    if scheme == "dimse":
        if not parts.username or port is None:
            raise IctviewError(f"PACS address '{address}': a DIMSE address is "
                               "dimse://AET@host:port (the server's AE title, host and port)")
        if move_aet and not listen_port:
            raise IctviewError("--move-aet needs --listen-port (where the server sends C-MOVE "
                               "results; configure it as that AE title's port on the server)")
        return Target("dimse", parts.hostname, port,
                      called_aet=_check_aet(parts.username, "called AE title"),
                      calling_aet=_check_aet(calling_aet, "--calling-aet"),
                      move_aet=_check_aet(move_aet, "--move-aet") if move_aet else "",
                      listen_port=listen_port, user=user, password=password, timeout_s=timeout_s)
    raise IctviewError(f"PACS address '{address}': unknown scheme '{scheme}' "
                       "(use http://, https:// for DICOMweb or dimse:// for DIMSE)")
