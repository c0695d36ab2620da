"""The domains benchmark's full profile: executes experiments/bench_domains.ipynb with the full parameters
(experiments/params/full.yaml) and writes its rows to benchmarks/results/domains.csv as they finish, resuming from
the rows already there; writes benchmarks/results/domains.md (the machine, the settings, what is missing).

Usage (one thread, hours; run under nohup):
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup python benchmarks/bench_domains.py &
  python benchmarks/bench_domains.py --datasets dlpfc_151673 --methods smoothed_pca_gmm m2st --seeds 0
  python benchmarks/bench_domains.py --methods stagate --seeds 0 --peer-epochs stagate=600   # labelled quick
  python benchmarks/bench_domains.py --methods m2st --out /tmp/m2st_rows.csv   # rows to another CSV (merge later)
  python benchmarks/bench_domains.py --note-only   # rewrite domains.md from the CSV
"""
import argparse
import datetime
import os
import platform
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "experiments" / "bench_domains.ipynb"
CSV = ROOT / "benchmarks" / "results" / "domains.csv"


def machine() -> str:
    "CPU model and cores, and the load when the note was written."
    model = platform.machine()
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{os.cpu_count()} CPU cores ({model}), shared with other jobs (1-min load {load:.1f} when this note was written)"


def commit() -> str:
    "The stlit commit measured ($STLIT_BENCH_COMMIT when the run used a snapshot, else this checkout's HEAD)."
    import subprocess
    if os.environ.get("STLIT_BENCH_COMMIT"):
        return os.environ["STLIT_BENCH_COMMIT"]
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def _version(dist: str) -> str:
    import importlib.metadata
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _grouped(missing: list) -> str:
    "(method, dataset, seed) triples as 'method: dataset (seeds ...), ...; method: ...'."
    by = {}
    for m, d, s in missing:
        by.setdefault(m, {}).setdefault(d, []).append(s)
    return "; ".join(f"{m}: " + ", ".join(f"{d} (seed{'s' if len(ss) > 1 else ''} {', '.join(map(str, ss))})"
                                          for d, ss in ds.items()) for m, ds in by.items())


MACHINES = CSV.with_name("domains_machines.csv")  # date, machine: the machine that ran the rows of each date


def _machines_by_date(rows) -> dict:
    "{date: (machine, n_rows)}; today's machine is recorded the first time a row of today is seen."
    known = pd.read_csv(MACHINES) if MACHINES.exists() else pd.DataFrame(columns=["date", "machine"])
    today = datetime.date.today().isoformat()
    dates = rows["date"].astype(str) if "date" in rows else pd.Series([], dtype=str)
    if (dates == today).any() and today not in set(known["date"].astype(str)):
        known = pd.concat([known, pd.DataFrame([dict(date=today, machine=machine().split(", shared")[0])])])
        known.to_csv(MACHINES, index=False, lineterminator="\n")
    names = dict(zip(known["date"].astype(str), known["machine"]))
    return {d: (names.get(d, "not recorded"), int(n)) for d, n in dates.value_counts().sort_index().items()}


def write_note(params: dict) -> None:
    "domains.md: machine, settings, and which (method, dataset, seed) of the full grid have no row yet."
    rows = pd.read_csv(CSV) if CSV.exists() else pd.DataFrame(columns=["method", "dataset", "seed"])
    have = set(zip(rows["method"], rows["dataset"], rows["seed"].astype(int)))
    missing = [(m, d, s) for s in params["seeds"] for d in params["datasets"] for m in params["methods"]
               if (m, d, s) not in have]
    errors = rows[rows["error"].notna()] if "error" in rows else rows.iloc[:0]
    from stlit.baselines import PEERS
    dists = [dist for _, dist in PEERS.values()] + ["stlit", "torch", "scanpy", "scikit-learn"]
    by_date = _machines_by_date(rows)
    lines = [f"# domains.csv: how it was measured ({datetime.date.today().isoformat()})", "",
             f"- Machine: {machine()}; torch threads {params.get('n_threads', 1)}, OPENBLAS/OMP/MKL threads 1.",
             "- Machine of each row, by its `date` (benchmarks/results/domains_machines.csv; CPU seconds compare only "
             "within one machine): " + "; ".join(f"{d}: {m} ({n} rows)" for d, (m, n) in by_date.items()) + ".",
             f"- Script: `python benchmarks/bench_domains.py` (executes experiments/bench_domains.ipynb, profile full); "
             f"stlit at commit {commit()} for the latest call (rows of earlier calls: `git log -p` of domains.csv; `date` column).",
             f"- Epochs: {params.get('peer_epochs') or 'the packages defaults (STAGATE 1,000, GraphST 600)'}; rows run "
             "with other settings say so in the `settings` column: "
             + ("; ".join(f"{m}: {', '.join(sorted(set(g.dropna())))}" for m, g in rows.groupby("method")["settings"]
                          if g.notna().any()) if "settings" in rows else "none") + ".",
             "- Packages when this note was written (importlib.metadata): " + ", ".join(f"{d} {_version(d)}" for d in dists) + ".",
             f"- Rows: {len(rows)} ({len(errors)} with an error); grid: {len(params['methods'])} methods x "
             f"{len(params['datasets'])} datasets x seeds {params['seeds']}.",
             f"- Not run yet ({len(missing)}): " + (_grouped(missing) or "none") + "."]
    CSV.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*")
    ap.add_argument("--methods", nargs="*")
    ap.add_argument("--seeds", nargs="*", type=int)
    ap.add_argument("--peer-epochs", nargs="*", default=[], metavar="NAME=EPOCHS",
                    help="fewer epochs than the package's (rows labelled 'quick (N epochs of the tutorial's M)')")
    ap.add_argument("--out", help="append the rows to this CSV instead of benchmarks/results/domains.csv")
    ap.add_argument("--note-only", action="store_true", help="only rewrite domains.md from the CSV")
    args = ap.parse_args()
    full = dict((yaml.safe_load((ROOT / "experiments" / "params" / "full.yaml").read_text()) or {})["bench_domains"])
    params = dict(full)
    for key in ("datasets", "methods", "seeds"):
        if getattr(args, key):
            params[key] = getattr(args, key)
    if args.peer_epochs:
        params["peer_epochs"] = {k: int(v) for k, v in (kv.split("=") for kv in args.peer_epochs)}
    if not args.note_only:
        import papermill as pm
        CSV.parent.mkdir(parents=True, exist_ok=True)
        out = Path(args.out).resolve() if args.out else CSV
        params.update(profile="full", out_csv=str(out), resume=True, full_table=str(CSV))
        try:
            executed = Path(tempfile.gettempdir()) / f"bench_domains_full.{os.getpid()}.ipynb"  # one per run: runs may overlap
            pm.execute_notebook(str(NOTEBOOK), str(executed), parameters=params, kernel_name="python3",
                                cwd=str(NOTEBOOK.parent), progress_bar=False, log_output=True, language="python")
        finally:
            write_note(full)  # what is missing of the whole full grid, whatever this call ran
    else:
        write_note(full)
    return 0


if __name__ == "__main__":
    sys.exit(main())
