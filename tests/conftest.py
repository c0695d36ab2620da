"""Shared pytest fixtures: the real-data root and a skip helper for datasets that are absent."""
from pathlib import Path

import pytest

from stlit.core import data_dir


@pytest.fixture(scope="session")
def data_root() -> Path:
    "Root of the real datasets ($STLIT_DATA or ../shared/data); skips the test when it holds no data manifest."
    root = data_dir()
    if not (root / "MANIFEST.md").exists():
        pytest.skip(f"real data not found at {root}: set STLIT_DATA to the folder holding MANIFEST.md")
    return root
