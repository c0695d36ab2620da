"""Shared pytest fixtures: the real-data root and a skip helper for datasets that are absent; one torch thread."""
from pathlib import Path

import pytest
import torch

from stlit.core import data_dir


@pytest.fixture(scope="session")
def data_root() -> Path:
    "Root of the real datasets ($STLIT_DATA or ../shared/data); skips the test when it holds no data manifest."
    root = data_dir()
    if not (root / "MANIFEST.md").exists():
        pytest.skip(f"real data not found at {root}: set STLIT_DATA to the folder holding MANIFEST.md")
    return root


@pytest.fixture
def one_torch_thread():
    "torch on one thread for the test (steady timings on a shared machine); the caller's setting is restored."
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
