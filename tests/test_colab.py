"""The Colab install cell (tools/colab_cell.py), its sync tool and the book checks of tools/build_book.py.

Fast tests (seconds): the cell's logic with pip replaced by a recorder, the sync/check tool on notebooks written
here, the `_config.yml` launch-button check and the run-time note. The cell against a real pip, in a fresh venv,
and data_tour through the Colab path are in tests/test_packaging.py (marked `packaging`).
"""
import importlib.metadata
import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import os

import nbformat
import pytest
import yaml

_ENV_AT_IMPORT = {k: os.environ.get(k) for k in ("STLIT_DATA", "STLIT_FETCH", "STLIT_INSTALL_SPEC")}

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import build_book  # noqa: E402
import colab_cell  # noqa: E402
import sync_colab_cell  # noqa: E402

OLD_CELL = ('#| hide\n# Colab: install stlit when this notebook runs there\nimport sys\nif "google.colab" in sys.modules:\n'
            '    import subprocess\n    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://x"])')


@pytest.fixture(autouse=True)
def _environment_restored():
    "The cell sets STLIT_DATA/STLIT_FETCH with os.environ.setdefault: put the whole environment back after each test."
    import os
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def pip_recorder(monkeypatch):
    "subprocess.run replaced: records each call and the constraints file's lines; returns `returncode`."
    calls = []

    def run(cmd, *args, **kwargs):
        pins = Path(cmd[cmd.index("-c") + 1]).read_text().split() if "-c" in cmd else []
        calls.append(dict(cmd=list(cmd), pins=pins))
        return subprocess.CompletedProcess(cmd, run.returncode)
    run.returncode = 0
    monkeypatch.setattr(subprocess, "run", run)
    return run, calls


def _exec_cell():
    exec(compile(colab_cell.CELL, "colab_cell", "exec"), {"__name__": "__main__"})


def test_cell_does_nothing_outside_colab(monkeypatch, pip_recorder):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("STLIT_DATA", raising=False)
    _exec_cell()
    assert pip_recorder[1] == [] and "STLIT_DATA" not in __import__("os").environ


def test_cell_in_colab_pins_the_runtime_and_sets_the_cache(monkeypatch, pip_recorder):
    import os
    run, calls = pip_recorder
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.delenv("STLIT_DATA", raising=False)
    monkeypatch.delenv("STLIT_FETCH", raising=False)
    monkeypatch.delenv("STLIT_INSTALL_SPEC", raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "stlit" else real_find_spec(name, *a))
    _exec_cell()
    assert os.environ["STLIT_DATA"] == colab_cell.COLAB_DATA == "/content/stlit_data"
    assert os.environ["STLIT_FETCH"] == "1"  # stlit.data.load fetches missing files there
    (call,) = calls
    assert call["cmd"][:4] == [sys.executable, "-m", "pip", "install"] and call["cmd"][-1] == colab_cell.DEFAULT_SPEC
    assert "[images,fetch]" in colab_cell.DEFAULT_SPEC and "git+https://github.com/stlit/stlit" in colab_cell.DEFAULT_SPEC
    expected = [f"{n}=={importlib.metadata.version(n)}" for n in colab_cell.KEEP if importlib.util.find_spec(n)]
    assert call["pins"] == expected and any(p.startswith("torch==") for p in expected)
    # a STLIT_DATA already set is kept; STLIT_INSTALL_SPEC replaces the requirement; a pip failure is an error
    monkeypatch.setenv("STLIT_DATA", "/somewhere")
    monkeypatch.setenv("STLIT_INSTALL_SPEC", "/tmp/stlit-0.1.0-py3-none-any.whl")
    run.returncode = 1
    with pytest.raises(RuntimeError, match=r"could not install /tmp/stlit-0.1.0-py3-none-any.whl beside .*torch=="):
        _exec_cell()
    assert os.environ["STLIT_DATA"] == "/somewhere" and calls[-1]["cmd"][-1] == "/tmp/stlit-0.1.0-py3-none-any.whl"
    # stlit importable (the cell re-run): no pip
    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    if real_find_spec("stlit") is not None:
        n = len(calls)
        _exec_cell()
        assert len(calls) == n


def _notebook(path: Path, first: str | None, tags=("remove-cell",)):
    nb = nbformat.v4.new_notebook()
    if first is not None:
        cell = nbformat.v4.new_code_cell(first)
        cell.metadata["tags"] = list(tags)
        nb.cells.append(cell)
    nb.cells += [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return nb


def test_sync_and_check(tmp_path, capsys):
    old = _notebook(tmp_path / "nbs" / "00_a.ipynb", OLD_CELL)
    _notebook(tmp_path / "nbs" / "01_b.ipynb", None)
    _notebook(tmp_path / "experiments" / "c.ipynb", colab_cell.CELL, tags=())
    _notebook(tmp_path / "experiments" / "d.ipynb", colab_cell.CELL)
    bad = sync_colab_cell.check(tmp_path)
    assert [b.split(":")[0] for b in bad] == ["experiments/c.ipynb", "nbs/00_a.ipynb", "nbs/01_b.ipynb"]
    assert "lacks the tag" in bad[0] and "differs" in bad[1] and "not the Colab install cell" in bad[2]
    assert sync_colab_cell.main(["--check", "--root", str(tmp_path)]) == 1
    assert "3 notebook(s) lack" in capsys.readouterr().out
    assert sync_colab_cell.main(["--root", str(tmp_path)]) == 0
    assert sync_colab_cell.check(tmp_path) == []
    a = nbformat.read(tmp_path / "nbs" / "00_a.ipynb", as_version=4)
    assert a.cells[0].id == old.cells[0].id and a.cells[0].source == colab_cell.CELL and len(a.cells) == 3
    b = nbformat.read(tmp_path / "nbs" / "01_b.ipynb", as_version=4)
    assert len(b.cells) == 3 and b.cells[0].source.startswith("#| hide") and b.cells[0].metadata["tags"] == ["remove-cell"]
    assert b.cells[1].source == "# Title"
    before = {p: p.read_bytes() for p in tmp_path.rglob("*.ipynb")}
    assert sync_colab_cell.main(["--root", str(tmp_path)]) == 0  # idempotent
    assert before == {p: p.read_bytes() for p in tmp_path.rglob("*.ipynb")}


def test_config_has_launch_buttons():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert build_book.config_problems(config) == []
    broken = {**config, "launch_buttons": {"notebook_interface": "classic"}}
    assert any("colab_url" in p for p in build_book.config_problems(broken))
    assert any("repository.url" in p for p in build_book.config_problems({**config, "repository": {}}))


def test_run_time_note(tmp_path):
    rows = [dict(notebook="m2st_more", profile="quick", seconds="312", date="2026-12-03", machine="2 CPU cores (X)"),
            dict(notebook="other", profile="full", seconds="5", date="2026-12-01", machine="m")]
    note = build_book.run_time_note("m2st_more", "quick", rows, {"m2st_more": "a CUDA GPU."})
    assert note == ("**Run time** (measured by `tools/build_book.py`): the **quick** profile ran in 5.2 min on "
                    "2 CPU cores (X) (2026-12-03). **Full profile:** a CUDA GPU.")
    assert "not timed yet" in build_book.run_time_note("new", "quick", rows, {})
    path = tmp_path / "x.ipynb"
    _notebook(path, colab_cell.CELL)
    build_book.add_run_time_note(path, note)
    build_book.add_run_time_note(path, note + " again")  # a rerun replaces the note
    nb = nbformat.read(path, as_version=4)
    assert [c.source for c in nb.cells[1:3]] == ["# Title", note + " again"]
    assert sum(build_book.TIMING_TAG in c.metadata.get("tags", []) for c in nb.cells) == 1


def test_hardware_statements_cover_every_experiment():
    hardware = yaml.safe_load((ROOT / "experiments" / "params" / "hardware.yaml").read_text())
    stems = {p.stem for p in (ROOT / "experiments").glob("*.ipynb")}
    assert stems <= set(hardware), f"experiments/params/hardware.yaml lacks {sorted(stems - set(hardware))}"


def test_every_notebook_has_the_install_cell():
    "The book check of tools/build_book.py, in the test suite too: cell 0 of every notebook is tools/colab_cell.py's."
    bad = sync_colab_cell.check(ROOT)
    assert not bad, ("notebooks without the current Colab install cell (fix: python tools/sync_colab_cell.py):\n"
                     + "\n".join(bad))


def test_zz_environment_untouched_after_the_cell_tests():
    "Runs last in this file: the cell's os.environ.setdefault calls did not leak into later test files (they did once)."
    assert {k: os.environ.get(k) for k in _ENV_AT_IMPORT} == _ENV_AT_IMPORT
