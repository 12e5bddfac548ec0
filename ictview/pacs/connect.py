"""The client for a target's protocol."""

from __future__ import annotations

from ictview.pacs.records import PacsClient
from ictview.pacs.target import Target


def connect(target: Target) -> PacsClient:
    if target.protocol == "dicomweb":
        from ictview.pacs.dicomweb import DicomWebPacs

        return DicomWebPacs(target)
    from ictview.pacs.dimse import DimsePacs

    return DimsePacs(target)
