"""Shared pytest fixtures: the real-data root and a skip helper for datasets that are absent."""
import os
from pathlib import Path

import pytest

from stlit.core import data_dir


@pytest.fixture(scope="session")
def data_root() -> Path:
    "Root of the real datasets ($STLIT_DATA or ../shared/data); skips the test when it is absent."
    root = data_dir()
    if not (root / "MANIFEST.md").exists() and not os.environ.get("STLIT_DATA"):
        pytest.skip(f"real data not found at {root}: set STLIT_DATA")
    return root
