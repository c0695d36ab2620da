"""Build the stlit book: execute notebooks with papermill, then render HTML with Jupyter Book.

Method/foundation notebooks (`nbs/`) run as they are; experiment notebooks (`experiments/`) run with the
parameters of a profile (`experiments/params/<profile>.yaml`, one mapping per notebook stem). Executed copies go to
`_build/src/` with the repository's relative paths (so Colab launch links point at the real source files), and the
HTML to `_build/html`. Warnings are errors (`-W`). Wall time per notebook goes to `_build/book_timings.csv`.

Checks before anything runs (the build stops otherwise): every notebook's first cell is the Colab install cell
(`tools/sync_colab_cell.py --check`), and `_config.yml` names the repository and has the Colab launch button.
Experiment pages get `results_dir` relative to the notebook (the injected-parameters cell shows no absolute path of
the build machine), and a "Run time" note under their title: the wall time of this build's run (profile, machine,
date), and the full profile's hardware (`experiments/params/hardware.yaml`) with its last measured time if any. Each
measured time is also kept in `experiments/params/timings.csv` (commit it after a build whose numbers you keep).

Notebooks are independent: `--jobs` of them run at once (default 2: most pages train on one thread, so two fill a\n2-core machine), longest first by their last measured time; each kernel gets cores/jobs BLAS threads.\n\nUsage: python tools/build_book.py [--profile quick|full] [--only STEM ...] [--jobs N] [--no-html] [--check]
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import nbformat
import papermill as pm
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sync_colab_cell  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
STAGE = BUILD / "src"
PARAMS = ROOT / "experiments" / "params"
TIMINGS = PARAMS / "timings.csv"  # notebook, profile, seconds, date, machine: the last measured run of each
TIMING_TAG = "stlit-run-time"


def toc_files() -> list[str]:
    "Every file named in _toc.yml, in book order."
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


def config_problems(config: dict) -> list[str]:
    "What `_config.yml` lacks for the book's launch buttons (repository url, Colab button)."
    problems = []
    repo = config.get("repository") or {}
    if not str(repo.get("url", "")).startswith("https://github.com/"):
        problems.append("repository.url must be the GitHub repository (https://github.com/<owner>/<repo>): "
                        "Colab opens the notebooks from there")
    if not repo.get("branch"):
        problems.append("repository.branch is missing")
    if "colab.research.google.com" not in str((config.get("launch_buttons") or {}).get("colab_url", "")):
        problems.append("launch_buttons.colab_url must be https://colab.research.google.com (the Colab launch button)")
    return problems


def preflight() -> list[str]:
    "Book checks run before executing anything: the Colab install cell in every notebook and the launch buttons."
    problems = [f"Colab install cell: {b}" for b in sync_colab_cell.check(ROOT)]
    if problems:
        problems.append("fix: python tools/sync_colab_cell.py (rewrites cell 0 from tools/colab_cell.py)")
    problems += [f"_config.yml: {p}" for p in config_problems(yaml.safe_load((ROOT / "_config.yml").read_text()) or {})]
    return problems


def machine() -> str:
    "This machine in a few words: CPU model, cores, GPU if torch sees one."
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{os.cpu_count()} CPU cores ({model})"
    try:
        import torch
        if torch.cuda.is_available():
            text += f", GPU {torch.cuda.get_device_name(0)}"
    except Exception:  # torch missing or broken: the CPU description stands
        pass
    return text


def read_timings() -> list[dict]:
    if not TIMINGS.exists():
        return []
    with open(TIMINGS, newline="") as fh:
        return list(csv.DictReader(fh))


def write_timings(rows: list[dict]) -> None:
    rows = sorted(rows, key=lambda r: (r["notebook"], r["profile"]))
    with open(TIMINGS, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["notebook", "profile", "seconds", "date", "machine"], lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def run_time_note(stem: str, profile: str, timings: list[dict], hardware: dict) -> str:
    "Markdown under an experiment page's title: measured wall times (from timings.csv) and the full profile's needs."
    rows = {r["profile"]: r for r in timings if r["notebook"] == stem}
    parts = []
    for prof in dict.fromkeys([profile, "quick", "full"]):
        r = rows.get(prof)
        if r:
            parts.append(f"the **{prof}** profile ran in {_minutes(float(r['seconds']))} on {r['machine']} ({r['date']})")
    text = "**Run time** (measured by `tools/build_book.py`): " + ("; ".join(parts) if parts else "not timed yet") + "."
    if stem in hardware:
        text += f" **Full profile:** {hardware[stem]}"
    return text


def add_run_time_note(path: Path, note: str) -> None:
    "Insert (or replace) the run-time note after the notebook's first markdown cell (its title)."
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if TIMING_TAG not in c.metadata.get("tags", [])]
    first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "markdown"), -1)
    cell = nbformat.v4.new_markdown_cell(note)
    cell.metadata["tags"] = [TIMING_TAG]
    nb.cells.insert(first + 1, cell)
    nbformat.write(nb, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", help="parameter profile in experiments/params/ (default: quick)")
    ap.add_argument("--only", nargs="*", help="execute only these notebook stems (others are reused if staged)")
    ap.add_argument("--no-html", action="store_true", help="execute only, do not render HTML")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="notebooks executed at once (default: 2, or 1 on a 1-core machine); BLAS threads split among them")
    ap.add_argument("--check", action="store_true", help="run the book checks only (install cell, launch buttons)")
    args = ap.parse_args()

    problems = preflight()
    if problems:
        sys.exit("book checks failed:\n  " + "\n  ".join(problems))
    if args.check:
        print("[book] checks passed: Colab install cell in every notebook, launch buttons and repository in _config.yml")
        return 0

    params_file = ROOT / "experiments" / "params" / f"{args.profile}.yaml"
    if not params_file.exists():
        sys.exit(f"unknown profile {args.profile!r}: {params_file} does not exist")
    profile = yaml.safe_load(params_file.read_text()) or {}
    results_dir = BUILD / "results"
    results_dir.mkdir(parents=True, exist_ok=True)

    files = toc_files()
    missing = [f for f in files if not (ROOT / f"{f}.ipynb").exists() and not (ROOT / f"{f}.md").exists()]
    if missing:
        sys.exit(f"_toc.yml names files that do not exist: {missing}")

    STAGE.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_toc.yml", "references.bib"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, STAGE / name)

    timings = []
    records = read_timings()
    hardware = yaml.safe_load((PARAMS / "hardware.yaml").read_text()) if (PARAMS / "hardware.yaml").exists() else {}
    hardware = hardware or {}
    jobs = max(1, args.jobs)
    here = machine() + (f", {jobs} pages at a time" if jobs > 1 else "")
    # Each kernel's BLAS/OpenMP threads: the cores shared among the pages running at once (a user's own setting wins).
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, threads)
    todo = []
    for rel in files:
        src = ROOT / f"{rel}.ipynb"
        if not src.exists():  # markdown page
            dst = STAGE / f"{rel}.md"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / f"{rel}.md", dst)
            continue
        dst = STAGE / f"{rel}.ipynb"
        dst.parent.mkdir(parents=True, exist_ok=True)
        stem = src.stem
        if args.only and stem not in args.only and dst.exists():
            continue
        params = {}
        if src.parent.name == "experiments":
            params = dict(profile.get(stem, {}) or {})
            params.setdefault("profile", args.profile)
            # relative to the notebook's folder (papermill's cwd): the page shows no absolute path of this machine
            params.setdefault("results_dir", os.path.relpath(results_dir, src.parent))
        todo.append((rel, src, dst, params))
    # Longest first (last measured time of this profile; pages never timed count as long), so that `jobs` workers
    # finish together; pages are independent (each writes its own files under results_dir).
    last = {r["notebook"]: float(r["seconds"]) for r in records if r["profile"] == args.profile}
    todo.sort(key=lambda t: -last.get(t[1].stem, float("inf")) if t[1].parent.name == "experiments" else 0)

    def execute(rel, src, dst, params):
        print(f"[book] executing {rel} ({args.profile}) ...", flush=True)
        t0 = time.perf_counter()
        pm.execute_notebook(str(src), str(dst), parameters=params, cwd=str(src.parent), kernel_name="python3",
                            language="python", progress_bar=False, log_output=False, report_mode=False)
        return time.perf_counter() - t0

    t_build = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # papermill runs each kernel in its own process
        futures = {pool.submit(execute, *item): item for item in todo}
        try:
            for fut in as_completed(futures):
                rel, src, dst, _ = futures[fut]
                dt = fut.result()
                timings.append((rel, dt))
                print(f"[book]   {rel} done in {dt:.1f} s", flush=True)
                if src.parent.name == "experiments":
                    stem = src.stem
                    records = [r for r in records if (r["notebook"], r["profile"]) != (stem, args.profile)]
                    load = f", load {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""  # shared machines run slower
                    records.append(dict(notebook=stem, profile=args.profile, seconds=f"{dt:.0f}", machine=here + load,
                                        date=datetime.date.today().isoformat()))
                    write_timings(records)
                    add_run_time_note(dst, run_time_note(stem, args.profile, records, hardware))
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)  # pages not started are dropped; running ones finish
            raise
    print(f"[book] executed {len(todo)} notebooks in {time.perf_counter() - t_build:.0f} s ({jobs} at a time)", flush=True)

    with open(BUILD / "book_timings.csv", "w") as fh:
        fh.write("notebook,seconds\n")
        fh.writelines(f"{r},{t:.1f}\n" for r, t in timings)

    if args.no_html:
        return 0
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", "-W", "-n", "--keep-going",
           "--path-output", str(ROOT), str(STAGE)]
    print("[book]", " ".join(cmd), flush=True)
    rc = subprocess.call(cmd)
    if rc == 0:
        print(f"[book] wrote {ROOT / '_build' / 'html' / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
