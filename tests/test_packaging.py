"""Packaging: `pip install stlit` goes into someone else's environment without replacing their torch/numpy/scanpy.

settings.ini declares compatible ranges (`name>=lowest tested version`); constraints.txt pins the exact set that
`make` and CI install. The packaging test (marked `packaging`, part of `make test`) builds the wheel, creates a fresh
virtual environment (no system site-packages) that already holds the *lowest* version settings.ini allows of every
core requirement -- torch 2.13.0 is the CPU build from this machine's local wheel folder, while constraints.txt has
torch 2.14.1, numpy 2.4.6, scanpy 1.11.5 -- installs the wheel without extras, checks with `pip list` before and
after that pip changed none of the pre-installed packages, then imports every module and runs fast tests there.
The venv also holds pytest and ipykernel (the test runner; Jupyter, as a Colab runtime has it).

The `images` extra is not installed there: PyPI's torchvision does not import beside the local torch 2.13.0 CPU build
("operator torchvision::nms does not exist"), so the image encoders (stlit.pp / stlit.hggep, which import torchvision
lazily) are covered only by the main suite with the constraints set.

The Colab path (issue 14 part 3) reuses that venv as "a Colab runtime": the wheel is uninstalled, then the book's
hidden install cell (tools/colab_cell.py) runs as a script with `google.colab` faked (a module put in sys.modules,
the cell's only test), pointed at the wheel through `STLIT_INSTALL_SPEC`; pip must leave every pre-installed package
alone. With the `images` extra the cell's pins make pip refuse (torchvision >= 0.29.1 needs another torch) instead
of replacing torch. Then experiments/data_tour.ipynb runs there (quick profile, up to its shape table: the maps after
it are drawn by `make book`) with an empty STLIT_DATA, its data fetched through the loopback mirror of tests/_mirror.py.
One sdist and one wheel (built from it) serve the whole module (fixture `built`).
"""
import configparser
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
# Copied next to conftest.py into a scratch folder and run with the fresh venv's python, so `import stlit` finds the
# installed wheel, never the checkout. None of them needs torchvision, fastcore or R.
FAST_TESTS = ["test_metrics.py", "test_graph.py", "test_api.py", "test_contract.py"]
# run as two pytest processes at once (this process only waits: a 2-core CI machine's second core does half), split
# by CPU time (test_api's fresh-interpreter imports and test_graph's seqFISH graphs are the two largest)
FAST_GROUPS = [["test_api.py", "test_metrics.py"], ["test_graph.py", "test_contract.py"]]
DESELECT = ["test_graph.py::test_smooth_knn_sigma_matches_umap"]  # umap's numba JIT: minutes on a loaded 2-core box
SMOKE = """
import json, sys
import numpy as np, scanpy, torch
import stlit
for name in stlit._SUBMODULES:  # every module imports without torchvision / fastcore / rpy2
    getattr(stlit, name)
assert "torchvision" not in sys.modules, "a module imported torchvision at import time: it belongs to the images extra"
adata = stlit.data.toy_visium()
stlit.pp.preprocess(adata, n_top_genes=150, n_comps=10)
stlit.graph.spatial_neighbors(adata, k=6)
leiden = stlit.cluster.leiden(adata.obsp["spatial_connectivities"], seed=0)  # igraph + leidenalg
labels = stlit.cluster.kmeans(adata.obsm["X_pca"], adata.obs["truth"].nunique(), seed=0)
scores = stlit.metrics.cluster_scores(adata.obs["truth"], labels)
# a core baseline: seurat_v3 HVGs (scanpy reads scikit-misc's loess), then smoothed PCA + GMM
import importlib.metadata
toy = stlit.data.toy_visium()
stlit.baselines.run("smoothed_pca_gmm", toy, toy.obs["truth"].nunique(), seed=0)
baseline = stlit.metrics.cluster_scores(toy.obs["truth"], toy.obs["smoothed_pca_gmm"])
sums = stlit.data.info("dlpfc_151673").checksums()  # the SHA-256 table: package data read from the installed wheel
print(json.dumps({"hashed_files": int(sums["sha256"].notna().sum()), "scikit-misc": importlib.metadata.version("scikit-misc"),
                  "baseline_ari": baseline["ari"], "stlit": stlit.__file__, "torch": torch.__version__, "numpy": np.__version__,
                  "scanpy": scanpy.__version__, "ari": scores["ari"], "n_leiden": int(len(set(leiden)))}))
"""


def _settings(key: str) -> list[str]:
    cfg = configparser.ConfigParser(delimiters=["="])
    cfg.read(ROOT / "settings.ini")
    return cfg["DEFAULT"].get(key, "").split()


def _lower_bounds() -> dict[str, str]:
    "{canonical name: lowest version} of the core requirements; every one must be written `name>=version`."
    bounds = {}
    for text in _settings("requirements"):
        req = Requirement(text)
        lows = [s.version for s in req.specifier if s.operator == ">="]
        assert len(lows) == 1 and not any(s.operator in ("==", "===", "~=") for s in req.specifier), (
            f"settings.ini requirement {text!r}: write a range with one tested lower bound (name>=version), "
            "exact pins belong in constraints.txt")
        bounds[canonicalize_name(req.name)] = lows[0]
    return bounds


def _pins(lines) -> dict[str, str]:
    "{canonical name: version} of `name==version` lines (pip freeze / constraints.txt); other lines are ignored."
    pins = {}
    for line in lines:
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line.strip())
        if m:
            pins[canonicalize_name(m[1])] = m[2]
    return pins


def _constraints() -> dict[str, str]:
    return _pins((ROOT / "constraints.txt").read_text().splitlines())


def test_requirements_are_tested_ranges_and_constraints_satisfy_them():
    bounds, pins = _lower_bounds(), _constraints()
    assert "torchvision" not in bounds, "torchvision is imported lazily: it belongs to the images extra"
    for text in _settings("requirements") + _settings("images_requirements") + _settings("r_requirements"):
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is required but constraints.txt does not pin it"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside settings.ini's range {text!r}")
    for name in ("torch", "numpy", "scanpy"):  # the packaging test must install something other than the pinned set
        assert bounds[name] != pins[name], f"{name}: lower bound equals the pin {pins[name]}, the fresh-env test proves nothing"
    assert not any(line.startswith(("-e", "stlit")) for line in (ROOT / "constraints.txt").read_text().splitlines())


def _torch_wheel(version: str) -> Path | None:
    "The local CPU wheel of torch `version` (a CUDA build from PyPI would be several GB): $STLIT_TORCH_WHEEL or find-links."
    if os.environ.get("STLIT_TORCH_WHEEL"):
        return Path(os.environ["STLIT_TORCH_WHEEL"])
    folders = [Path(p) for p in os.environ.get("PIP_FIND_LINKS", "").split() if p] + [Path("/opt/wheels")]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for folder in folders:
        hits = sorted(folder.glob(f"torch-{version}+cpu-{tag}-*.whl")) if folder.is_dir() else []
        if hits:
            return hits[0]
    return None


PACKAGE_DATA = ["stlit/fetch_checksums.csv"]  # data files the code reads with importlib.resources


def _copy_sources(dst: Path) -> Path:
    "What a build needs, copied out of the checkout (so it gets no build/ or egg-info folder)."
    dst.mkdir(parents=True)
    for name in ("setup.py", "settings.ini", "README.md", "pyproject.toml", "MANIFEST.in", "constraints.txt"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "stlit", dst / "stlit", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def _run(cmd, timings: dict, label: str, **kw) -> subprocess.CompletedProcess:
    t0 = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    timings[label] = round(time.perf_counter() - t0, 1)
    assert proc.returncode == 0, f"{label} failed ({' '.join(map(str, cmd))}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc


LIST = ("import importlib.metadata as m, json\n"
        "print(json.dumps([[d.metadata['Name'], d.version] for d in m.distributions()]))")


def _installed(py, timings: dict, label: str, env: dict) -> dict[str, str]:
    """{canonical name: version} of everything in the venv: the distributions `pip list` shows, read with
    importlib.metadata in isolated mode (sys.path without the working directory, as pip lists; faster than pip)."""
    listed = json.loads(_run([py, "-I", "-c", LIST], timings, label, env=env).stdout)  # -I: not the cwd's egg-info
    return {canonicalize_name(name): version for name, version in listed}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", **extra)
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The sdist, built from a copy of the sources (so the checkout gets no build/ folder), and the wheel built from
    that sdist (as pip builds one from PyPI): one build for the sdist test and the fresh venv."""
    tmp = tmp_path_factory.mktemp("build")
    timings, env = {}, _env()
    src = _copy_sources(tmp / "src")
    _run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "-o", tmp / "sdist", src], timings, "sdist", env=env)
    (sdist,) = (tmp / "sdist").glob("stlit-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp / "dist", sdist],
         timings, "wheel from sdist", env=env)
    (wheel,) = (tmp / "dist").glob("stlit-*.whl")
    return dict(sdist=sdist, wheel=wheel, timings=timings)


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory, built):
    "The wheel (built from the sdist), installed without extras into a venv pre-filled with the lowest supported versions."
    bounds = _lower_bounds()
    torch_wheel = _torch_wheel(bounds["torch"])
    if torch_wheel is None:
        pytest.skip(f"no local CPU wheel of torch {bounds['torch']} (this machine keeps it in /opt/wheels); "
                    "set STLIT_TORCH_WHEEL to one to run the packaging test")
    tmp = tmp_path_factory.mktemp("packaging")
    timings, env = dict(built["timings"]), _env()
    t_start = time.perf_counter()
    # 1. the wheel (fixture `built`)
    wheel = built["wheel"]
    # 2. someone else's environment: a fresh venv holding the lowest versions settings.ini allows
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], timings, "create venv", env=env)
    py = venv / "bin" / "python"
    others = [f"{name}=={version}" for name, version in bounds.items() if name != "torch"]
    # --no-compile: byte-compiling torch's thousands of files costs minutes on a loaded machine and checks nothing here.
    pytest_pin = _constraints().get("pytest")  # the test runner goes in now too: one resolver run instead of two
    others.append(f"pytest=={pytest_pin}" if pytest_pin else "pytest")
    # ipykernel too (a Colab runtime has Jupyter; the Colab-path test runs data_tour in this venv's kernel)
    others.append(f"ipykernel=={_constraints()['ipykernel']}" if "ipykernel" in _constraints() else "ipykernel")
    _run([py, "-m", "pip", "install", "-q", "--no-compile", torch_wheel, *others], timings, "pre-install lowest versions", env=env)
    before = _installed(py, timings, "list before", env)
    # 3. the wheel, no extras (see the module docstring for why not `images`)
    _run([py, "-m", "pip", "install", "-q", "--no-compile", wheel], timings, "install wheel", env=env)
    after = _installed(py, timings, "list after", env)
    timings["setup total"] = round(time.perf_counter() - t_start, 1)
    return dict(tmp=tmp, py=py, bounds=bounds, before=before, after=after, timings=timings, wheel=wheel.name,
                wheel_path=wheel)


@pytest.mark.packaging
def test_wheel_leaves_the_preinstalled_stack_alone(fresh_env):
    before, after, bounds = fresh_env["before"], fresh_env["after"], fresh_env["bounds"]
    for name, version in bounds.items():  # the lowest versions really went in
        assert name in before and before[name].split("+")[0] == version, f"{name}: wanted {version}, got {before.get(name)}"
    changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    assert not changed, f"installing the wheel changed pre-installed packages (before, after): {changed}"
    added = sorted(set(after) - set(before))
    assert added == ["stlit"], f"the wheel pulled in more than itself: {added}"
    with zipfile.ZipFile(fresh_env["wheel_path"]) as whl:
        assert set(PACKAGE_DATA) <= set(whl.namelist()), f"the wheel lacks package data {PACKAGE_DATA}"
    assert not any(n.startswith("nvidia-") or n == "torchvision" for n in after), "a CUDA/torchvision download crept in"
    sys.stderr.write(f"\n[packaging] pre-installed {json.dumps({n: before[n] for n in bounds})}\n"
                     f"[packaging] after `pip install {fresh_env['wheel']}`: unchanged ({len(before)} packages), "
                     f"added {added}\n[packaging] timings (s): {json.dumps(fresh_env['timings'])}\n")


@pytest.mark.packaging
def test_fast_tests_pass_against_the_installed_wheel(fresh_env):
    from stlit.core import data_dir

    tmp, py, timings = fresh_env["tmp"], fresh_env["py"], fresh_env["timings"]
    work = tmp / "tests"
    work.mkdir()
    for name in ["conftest.py", *FAST_TESTS]:
        shutil.copy2(ROOT / "tests" / name, work / name)
    shutil.copy2(ROOT / "pytest.ini", work / "pytest.ini")
    root = data_dir()
    env = _env(**({"STLIT_DATA": str(root)} if (root / "MANIFEST.md").exists() else {}))
    smoke = json.loads(_run([py, "-c", SMOKE], timings, "smoke", cwd=work, env=env).stdout.strip().splitlines()[-1])
    assert Path(smoke["stlit"]).is_relative_to(tmp / "venv"), f"imported {smoke['stlit']}, not the installed wheel"
    assert smoke["torch"].split("+")[0] == fresh_env["bounds"]["torch"] and smoke["numpy"] == fresh_env["bounds"]["numpy"]
    assert smoke["n_leiden"] >= 2 and smoke["ari"] > 0.3, smoke
    assert smoke["hashed_files"] > 0, smoke
    assert smoke["scikit-misc"] == fresh_env["bounds"]["scikit-misc"] and smoke["baseline_ari"] > 0.3, smoke  # seurat_v3 ran  # stlit/fetch_checksums.csv was found inside the installed package  # the toy's layers found from expression, not noise
    deselect = [arg for d in DESELECT for arg in ("--deselect", d)]
    assert sorted(sum(FAST_GROUPS, [])) == sorted(FAST_TESTS)
    t0 = time.perf_counter()
    procs = [subprocess.Popen([str(py), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "--basetemp",
                               str(work / f"tmp{i}"), *group, *deselect],
                              cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, group in enumerate(FAST_GROUPS)]
    try:
        outs = [proc.communicate(timeout=1500) for proc in procs]
    finally:
        for proc in procs:  # a group past the timeout does not outlive the test
            if proc.poll() is None:
                proc.kill()
    timings["fast tests"] = round(time.perf_counter() - t0, 1)
    summaries = [out.strip().splitlines()[-1] if out.strip() else "" for out, _ in outs]
    summary = " + ".join(summaries)
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, f"fast tests failed in the fresh venv:\n{out[-6000:]}\n{err[-3000:]}"
    passed = sum(int(re.search(r"(\d+) passed", s)[1]) for s in summaries)
    assert passed >= 10, summary
    sys.stderr.write(f"\n[packaging] smoke: {json.dumps(smoke)}\n[packaging] fast tests in the fresh venv: {summary}\n"
                     f"[packaging] timings (s): {json.dumps(timings)}\n")


@pytest.mark.packaging
def test_sdist_ships_settings_and_package_data(built):
    "The sdist holds what setup.py reads (settings.ini, README.md) and the package data; the wheel built from it too."
    sdist, wheel, timings = built["sdist"], built["wheel"], built["timings"]
    with tarfile.open(sdist) as tar:
        members = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    missing = {"setup.py", "settings.ini", "README.md", *PACKAGE_DATA} - members
    assert not missing, f"the sdist lacks {sorted(missing)} (MANIFEST.in)"
    with zipfile.ZipFile(wheel) as whl:
        assert set(PACKAGE_DATA) <= set(whl.namelist()), f"a wheel built from the sdist lacks {PACKAGE_DATA}"
    sys.stderr.write(f"\n[packaging] sdist {sdist.name}: {len(members)} files incl. {PACKAGE_DATA}; timings (s): {json.dumps(timings)}\n")


FAKE_COLAB = "import sys, types\nsys.modules.setdefault('google.colab', types.ModuleType('google.colab'))  # fake Colab\n"


def _colab_cell() -> str:
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        from colab_cell import CELL
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return CELL


def _cell_script(colab: bool = True) -> str:
    "The install cell as a script (faked Colab or not), printing STLIT_DATA and where stlit imports from."
    return ((FAKE_COLAB if colab else "") + _colab_cell() +
            "\nimport os, importlib.util\nspec = importlib.util.find_spec('stlit')\n"
            "print('STLIT_DATA=' + os.environ.get('STLIT_DATA', ''))\n"
            "print('stlit=' + (spec.origin if spec else ''))\n")


@pytest.mark.packaging
def test_colab_install_cell_keeps_the_runtime_stack(fresh_env):
    tmp, py, timings, wheel = fresh_env["tmp"], fresh_env["py"], fresh_env["timings"], fresh_env["wheel_path"]
    work = tmp / "colab"
    work.mkdir(exist_ok=True)
    env = _env()
    env.pop("STLIT_DATA", None)
    _run([py, "-m", "pip", "uninstall", "-y", "-q", "stlit"], timings, "colab: uninstall wheel", env=env)
    runtime = _installed(py, timings, "colab: list runtime", env)
    assert "stlit" not in runtime
    # outside Colab the cell does nothing (no pip, no STLIT_DATA), whatever STLIT_INSTALL_SPEC says
    out = _run([py, "-c", _cell_script(colab=False)], timings, "colab: cell outside Colab", cwd=work,
               env={**env, "STLIT_INSTALL_SPEC": str(tmp / "missing.whl")}).stdout
    assert "STLIT_DATA=\n" in out and "stlit=\n" in out, out
    # the images extra: torchvision >= 0.29.1 needs torch 2.14, the runtime has 2.13.0: the pins make pip refuse
    t0 = time.perf_counter()
    refused = subprocess.run([str(py), "-c", _cell_script()], cwd=work, capture_output=True, text=True,
                             env={**env, "STLIT_INSTALL_SPEC": f"stlit[images,fetch] @ {wheel.as_uri()}"})
    timings["colab: cell with [images,fetch] (refused)"] = round(time.perf_counter() - t0, 1)
    assert refused.returncode != 0 and "RuntimeError: pip could not install" in refused.stderr, refused.stderr[-3000:]
    assert f"torch=={runtime['torch']}" in refused.stderr and "numpy==" in refused.stderr
    assert _installed(py, timings, "colab: list after refusal", env) == runtime, "a refused install changed the runtime"
    # the wheel with the fetch extra (rdata, for data_tour below): installed, nothing pre-installed touched,
    # STLIT_DATA set to the Colab cache
    out = _run([py, "-c", _cell_script()], timings, "colab: install cell", cwd=work,
               env={**env, "STLIT_INSTALL_SPEC": f"stlit[fetch] @ {wheel.as_uri()}"}).stdout
    assert "STLIT_DATA=/content/stlit_data\n" in out, out
    assert Path(out.split("stlit=")[1].strip()).is_relative_to(tmp / "venv"), out
    after = _installed(py, timings, "colab: list after", env)
    changed = {n: (v, after.get(n)) for n, v in runtime.items() if after.get(n) != v}
    assert not changed, f"the Colab cell changed the runtime's packages (before, after): {changed}"
    added = sorted(set(after) - set(runtime))
    assert {"stlit", "rdata"} <= set(added) and not any(n.startswith("nvidia-") or n == "torchvision" for n in added), added
    # run again (a reader re-running the cell): stlit is importable, so no pip; a STLIT_DATA already set is kept
    out = _run([py, "-c", _cell_script()], timings, "colab: cell rerun", cwd=work,
               env={**env, "STLIT_DATA": str(work / "mine"), "STLIT_INSTALL_SPEC": str(tmp / "missing.whl")}).stdout
    assert f"STLIT_DATA={work / 'mine'}\n" in out, out
    keep = {n: runtime[n] for n in ("torch", "numpy", "scipy", "pandas") if n in runtime}
    fresh_env["colab_installed"] = True
    sys.stderr.write(f"\n[colab] runtime kept by the install cell: {json.dumps(keep)}; added {added}; "
                     f"[images,fetch] refused: {refused.stderr.strip().splitlines()[-1][:200]}\n"
                     f"[colab] timings (s): {json.dumps({k: v for k, v in timings.items() if k.startswith('colab')})}\n")


@pytest.mark.packaging
def test_data_tour_through_the_colab_path(fresh_env, monkeypatch):
    "experiments/data_tour.ipynb in the faked Colab runtime, its data fetched through the loopback mirror."
    import nbformat
    import papermill as pm
    from stlit.core import data_dir
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import _mirror
        import sync_colab_cell
    except ImportError as e:
        pytest.skip(f"tests/_mirror.py (the loopback mirror of stlit.data.fetch) is not importable: {e}")
    finally:
        sys.path.remove(str(ROOT / "tests"))
        sys.path.remove(str(ROOT / "tools"))
    if not fresh_env.get("colab_installed"):
        pytest.skip("needs test_colab_install_cell_keeps_the_runtime_stack to have installed stlit with the cell")
    real = data_dir()
    if not (real / "MANIFEST.md").exists():
        pytest.skip(f"the mirror is laid out from the real data folder, absent here ({real})")
    tmp, py, timings = fresh_env["tmp"], fresh_env["py"], fresh_env["timings"]
    assert "ipykernel" in fresh_env["before"], "the fixture pre-installs ipykernel (Colab's Jupyter)"
    work = tmp / "tour"
    kernel = work / "jupyter" / "kernels" / "colab-venv"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({"argv": [str(py), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                                    "display_name": "faked Colab", "language": "python"}))
    nb = nbformat.read(ROOT / "experiments" / "data_tour.ipynb", as_version=4)
    sync_colab_cell.sync(nb)  # the page as the book ships it (a no-op once the lead has synced the notebooks)
    # trimmed to the install cell, fetch, load and shape table: the maps drawn after it run in `make book`
    end = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith("## On tissue"))
    assert "data_tour_shapes.csv" in "".join(c.source for c in nb.cells[:end]), "the shape table moved below the maps"
    nb.cells = nb.cells[:end]
    nb.cells.insert(0, nbformat.v4.new_code_cell(FAKE_COLAB))
    nbformat.write(nb, work / "data_tour.ipynb")
    data = work / "stlit_data"
    data.mkdir()
    for key, value in {**_env(), "JUPYTER_PATH": str(work / "jupyter"), "STLIT_DATA": str(data)}.items():
        monkeypatch.setenv(key, value)
    for key in ("PYTHONPATH", "VIRTUAL_ENV"):
        monkeypatch.delenv(key, raising=False)
    import stlit.data
    with _mirror.mirror(stlit.data.datasets(), tmp / "mirror", data=real) as url:
        monkeypatch.setenv("STLIT_MIRROR", url)  # the cell sets STLIT_FETCH=1: load() itself fetches, from the mirror
        t0 = time.perf_counter()
        pm.execute_notebook(str(work / "data_tour.ipynb"), str(work / "data_tour_out.ipynb"), kernel_name="colab-venv",
                            language="python", cwd=str(work), progress_bar=False,
                            parameters={"profile": "quick", "results_dir": str(work / "results"), "mirror": url})
        wall = round(time.perf_counter() - t0, 1)
    timings["colab: data_tour (fetch + run)"] = wall
    out = nbformat.read(work / "data_tour_out.ipynb", as_version=4)
    text = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.outputs)
    assert f"data from {data}" in text, text[:2000]
    import pandas as pd
    shapes = pd.read_csv(work / "results" / "data_tour_shapes.csv", index_col=0)
    assert set(shapes.index) == set(stlit.data.datasets()) and shapes["matches registry"].all(), shapes
    folder = shapes.index.map(lambda n: stlit.data.info(n).folder)
    assert shapes["fetched"].groupby(folder).any().all(), shapes  # each folder came through fetch (it began empty)
    assert all((data / f).is_dir() for f in set(folder))
    sys.stderr.write(f"\n[colab] data_tour through the Colab path: {wall} s wall ({int(shapes['fetched'].sum())} of "
                     f"{len(shapes)} datasets fetched from the loopback mirror into an empty STLIT_DATA, "
                     f"{sum(f.stat().st_size for f in data.rglob('*') if f.is_file()) / 1e6:.0f} MB)\n"
                     f"[colab] timings (s): {json.dumps({k: v for k, v in timings.items() if k.startswith('colab')})}\n")
