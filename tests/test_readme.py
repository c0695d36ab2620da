"""The README's Python example runs as written, and the README claims only modules that exist."""
import re
from pathlib import Path

import pytest

import stlit

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_example_runs(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert blocks, "README.md has no ```python example"
    if not (stlit.core.data_dir() / "dlpfc_151673").exists():
        pytest.skip("the real DLPFC 151673 data are not in STLIT_DATA")
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out
    ari = float(re.search(r"'ari': ([0-9.]+)", printed).group(1))
    assert 0.2 < ari < 0.9, printed  # a real clustering of DLPFC, not chance and not a copy of the truth


def test_readme_modules_exist():
    named = set(re.findall(r"`stlit\.([a-z_0-9]+)`", README))
    assert named, "README names no stlit module"
    for name in named:
        assert name in stlit._SUBMODULES, f"README advertises stlit.{name}, which does not exist"
        getattr(stlit, name)


def test_dir_lists_only_importable_modules():
    for name in stlit._SUBMODULES:
        assert getattr(stlit, name).__name__ == f"stlit.{name}"
