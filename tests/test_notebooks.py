"""Run every notebook's inline tests (nbdev_test), one pytest case per notebook in nbs/."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 1, "no notebooks found in nbs/"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_inline_tests(nb):
    nbdev_test = Path(sys.executable).parent / "nbdev_test"
    proc = subprocess.run([str(nbdev_test), "--path", str(nb), "--do_print"], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"nbdev_test failed for {nb.name}:\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
