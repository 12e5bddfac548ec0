"""Synthetic multi-site head CT written as real DICOM plus label files (see DESIGN.md)."""

from __future__ import annotations

from ictview.synth.generate import generate
from ictview.synth.sites import PRESETS, SITES

__all__ = ["PRESETS", "SITES", "generate"]
