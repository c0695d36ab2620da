"""HGGEP at the default (CPU) profile over the leak-free folds and the patient fold, one fold at a time.

Run from the repository root, one thread, in the background (hours on a 2-core CPU):

    nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup .venv/bin/python \
        benchmarks/hggep/folds.py >> benchmarks/results/hggep/folds.log 2>&1 &

Every fold goes through `stlit.hggep.cross_validate` (the folds, target and per-gene r of `stlit.img2expr`, so the
rows join the baselines of experiments/hggep_baselines). Resumable through benchmarks/_results.py: a fold whose summary
rows are in <tag>_summary.csv (read again before each fold) is skipped, and so is a fold another run of this script is
computing (`claim`): to use two cores, start two runs with the same arguments. After EACH new fold its rows are
appended (locked appends) to both files, the per-gene rows first; per-gene rows of a fold that never reached the
summary (a run that died between the two appends) are dropped when the fold is redone:

- benchmarks/results/hggep/<tag>_per_gene.csv: PER_GENE_COLUMNS (protocol, fold, section, method, weights, val,
  fit_seconds, gene, pcc, ...), one row per held-out section x gene.
- benchmarks/results/hggep/<tag>_summary.csv: SUMMARY_COLUMNS, per held-out section: mean / median r over the 785
  genes and the top-50 variable genes, CPU and wall seconds of the whole fold, CPU s per epoch, the machine and its
  load. A file written before `train_prediction_spread` was recorded gains that column (empty) on the next run.

Optional arguments: a Python literal dict of HGGEPConfig fields (default: none, the CPU profile) and a tag for the file
names (default `folds`).
"""
import ast
import fcntl
import os
import platform
import resource
import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import _results  # noqa: E402  (CSV append / resume / claims, shared by the benchmark scripts)

OUT = HERE.parent / "results" / "hggep"
SECTIONS = ["B4", "C2", "C3", "C4", "C5", "C6"]
# (protocol, held-out sections of one fold), in this order: C6 first (the fold measured before), then the patient fold
# holding out B (train C2-C6, test B4), then the patient fold holding out C (train B4 alone, test C2-C6: one training,
# five held-out sections, about a quarter of a 5-section fold's CPU), then the leak-free C2-C5, and leak-free B4 last:
# at fixed epochs it trains on the same five sections as the patient fold holding out B (C2-C6), in another order, so
# it adds only a second draw of the training order to a number already measured.
PLAN = [("leak_free", ("C6",)), ("patient", ("B4",)), ("patient", ("C2", "C3", "C4", "C5", "C6")),
        ("leak_free", ("C2",)), ("leak_free", ("C3",)), ("leak_free", ("C4",)), ("leak_free", ("C5",)),
        ("leak_free", ("B4",))]
# the columns of the committed CSVs (`cross_validate`'s table; `img2expr.summarise` plus this script's), in file order
PER_GENE_COLUMNS = ["protocol", "fold", "section", "method", "weights", "val", "fit_seconds", "gene", "pcc", "leaks",
                    "epochs_run", "trunk", "n_train_sections"]
SUMMARY_COLUMNS = ["protocol", "section", "method", "weights", "mean_pcc", "median_pcc", "n_genes", "n_constant",
                   "mean_pcc_top", "median_pcc_top", "n_top", "train_sections", "epochs", "cpu_seconds",
                   "wall_seconds", "cpu_s_per_epoch", "prepare_wall_seconds", "peak_rss_mb", "load_at_start",
                   "load_at_end", "config", "machine", "date", "train_prediction_spread"]


def machine() -> str:
    import torch
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), torch {torch.__version__} 1 thread, shared with other jobs"


def fold_done(summary_csv, protocol, tests) -> bool:
    "Whether the summary holds the fold (its rows are appended together: the first held-out section stands for all)."
    return _results.has_row(summary_csv, protocol=protocol, section=tests[0])


def _rewrite(path, change) -> None:
    """Rewrite the CSV `path` as `change(rows)` (rows read as text, so kept cells are written back unchanged), locked
    as `_results.append_rows` locks: a concurrent append waits. Nothing is written when `change` returns None."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return
    with open(path, "r+", newline="") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
        rows = change(pd.read_csv(f, dtype=str, keep_default_na=False))
        if rows is not None:
            f.seek(0)
            f.truncate()
            rows.to_csv(f, index=False)


def widen(path, columns) -> None:
    "An older CSV gains the missing `columns` (empty cells, appended on the right); its rows are otherwise unchanged."
    _rewrite(path, lambda rows: None if set(columns) <= set(rows.columns) else
             rows.reindex(columns=[*rows.columns, *[c for c in columns if c not in rows.columns]], fill_value=""))


def drop_unfinished(per_gene_csv, protocol, tests) -> int:
    """Remove the per-gene rows of fold (protocol, tests): to be called under the fold's claim when the summary lacks
    the fold, so that they were left by a run that died before appending its summary. Returns how many."""
    dropped = []
    def change(rows):
        stale = (rows.protocol == protocol) & rows.section.isin(tests)
        dropped.append(int(stale.sum()))
        return rows[~stale] if stale.any() else None
    _rewrite(per_gene_csv, change)
    return sum(dropped)


def write_fold(summary_csv, per_gene_csv, table: pd.DataFrame, summary_rows: list) -> None:
    "Append one fold: its per-gene rows, then its summary rows (one append each); unknown columns are an error."
    for name, cols, new in (("per-gene", PER_GENE_COLUMNS, table.columns),
                            ("summary", SUMMARY_COLUMNS, pd.DataFrame(summary_rows).columns)):
        extra = set(new) - set(cols)
        if extra:
            raise ValueError(f"folds.py: {name} rows have columns not in the CSV's: {sorted(extra)}; add them to "
                             f"{'PER_GENE' if name == 'per-gene' else 'SUMMARY'}_COLUMNS")
    _results.append_rows(per_gene_csv, table, header(per_gene_csv, PER_GENE_COLUMNS))
    _results.append_rows(summary_csv, summary_rows, header(summary_csv, SUMMARY_COLUMNS))


def header(path, columns) -> list:
    "The column order of the CSV `path` (`columns` for a new file); it must hold every one of `columns` (see widen)."
    if not Path(path).exists() or Path(path).stat().st_size == 0:
        return list(columns)
    have = list(pd.read_csv(path, nrows=0).columns)
    if set(columns) - set(have):
        raise ValueError(f"{path} lacks columns {sorted(set(columns) - set(have))}: call widen first")
    return have


def main(argv) -> None:
    if len(argv) > 3:
        sys.exit("usage: folds.py [HGGEPConfig fields as a Python dict] [tag]; for two cores start two runs with the "
                 "same arguments (each fold is claimed by one)")
    fields = ast.literal_eval(argv[1]) if len(argv) > 1 else {}
    tag = argv[2] if len(argv) > 2 else "folds"
    summary_csv, per_gene_csv = OUT / f"{tag}_summary.csv", OUT / f"{tag}_per_gene.csv"
    todo = [(p, tests) for p, tests in PLAN if not fold_done(summary_csv, p, tests)]
    print(f"to do: {todo}", flush=True)
    if not todo:
        return
    import torch
    torch.set_num_threads(1)
    import stlit.hggep as hg
    import stlit.img2expr as ie
    from stlit.data import load

    widen(summary_csv, SUMMARY_COLUMNS)  # a file written before train_prediction_spread gains it (empty)
    widen(per_gene_csv, PER_GENE_COLUMNS)
    data = {s: load("her2st", section=s) for s in SECTIONS}
    top = ie.most_variable_genes([ie.expression_target(a) for a in data.values()], n=50)
    for protocol, tests in todo:
        with _results.claim(summary_csv, protocol=protocol, section=tests[0]) as mine:
            if not mine:
                print(f"{protocol} {' '.join(tests)}: done or being computed by another run", flush=True)
                continue
            dropped = drop_unfinished(per_gene_csv, protocol, tests)
            if dropped:
                print(f"{protocol} {' '.join(tests)}: dropped {dropped} per-gene rows of an unfinished run", flush=True)
            load_before, cpu, wall = os.getloadavg()[0], time.process_time(), time.perf_counter()
            store = {}
            table = hg.cross_validate(list(data.values()), protocol=protocol, test_sections=list(tests), seed=0,
                                      device="cpu", verbose=False, store=store, **fields)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            model = next(iter(store["models"].values()))
            summary = []
            for s in ie.summarise(table, top_genes=top).to_dict("records"):  # one row per held-out section of the fold
                summary.append({**s, "train_sections": " ".join(model.inputs["train_sections"]),
                                "epochs": len(model.history),
                                "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),  # whole fold
                                "cpu_s_per_epoch": round(float(model.history.cpu_seconds.mean()), 2),
                                "train_prediction_spread": model.inputs.get("train_prediction_spread"),
                                "prepare_wall_seconds": round(model.inputs["prepare_seconds"], 1),
                                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                                "load_at_start": round(load_before, 2), "load_at_end": round(os.getloadavg()[0], 2),
                                "config": repr(fields) if fields else "default (CPU profile)", "machine": machine(),
                                "date": time.strftime("%Y-%m-%d", time.gmtime())})
                print(f"{protocol} {s['section']} (fold held out {' '.join(tests)}): mean r {s['mean_pcc']:.4f} (median "
                      f"{s['median_pcc']:.4f}, top-50 {s['mean_pcc_top']:.4f}); fold CPU {cpu:.0f} s, wall {wall:.0f} s, "
                      f"{summary[-1]['cpu_s_per_epoch']} CPU s/epoch", flush=True)
            write_fold(summary_csv, per_gene_csv, table, summary)


if __name__ == "__main__":
    main(sys.argv)
