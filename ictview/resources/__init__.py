"""Files the package carries: training configs (TOML), the stylesheet and its icons.

They live inside the package so a wheel carries them (pyproject's package-data) and a
checkout, an editable install and a plain ``pip install .`` all find them the same way.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
CONFIGS = ROOT / "configs"
STYLES = ROOT / "styles"
