"""Build the stlit book: execute notebooks with papermill, then render HTML with Jupyter Book.

Method/foundation notebooks (`nbs/`) run as they are; experiment notebooks (`experiments/`) run with the
parameters of a profile (`experiments/params/<profile>.yaml`, one mapping per notebook stem). Executed copies go to
`_build/src/` with the repository's relative paths (so Colab launch links point at the real source files), and the
HTML to `_build/html`. Warnings are errors (`-W`). Wall time per notebook goes to `_build/book_timings.csv`.

Usage: python tools/build_book.py [--profile quick|full] [--only STEM ...] [--no-html]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import papermill as pm
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "_build"
STAGE = BUILD / "src"


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="quick", help="parameter profile in experiments/params/ (default: quick)")
    ap.add_argument("--only", nargs="*", help="execute only these notebook stems (others are reused if staged)")
    ap.add_argument("--no-html", action="store_true", help="execute only, do not render HTML")
    args = ap.parse_args()

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
            params.setdefault("results_dir", str(results_dir))
        print(f"[book] executing {rel} ({args.profile}) ...", flush=True)
        t0 = time.perf_counter()
        pm.execute_notebook(str(src), str(dst), parameters=params, cwd=str(src.parent), kernel_name="python3", language="python",
                            progress_bar=False, log_output=False, report_mode=False)
        dt = time.perf_counter() - t0
        timings.append((rel, dt))
        print(f"[book]   done in {dt:.1f} s", flush=True)

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
