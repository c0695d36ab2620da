"""HGGEP at the default (CPU) profile over the leak-free folds and the patient fold, one fold at a time.

Run from the repository root, one thread, in the background (hours on a 2-core CPU):

    nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup .venv/bin/python \
        benchmarks/hggep/folds.py >> benchmarks/results/hggep/folds.log 2>&1 &

Every fold goes through `stlit.hggep.cross_validate` (the folds, target and per-gene r of `stlit.img2expr`, so the
rows join the baselines of experiments/hggep_baselines). Resumable: (protocol, section) pairs already in the summary
are skipped, and after EACH new fold its rows are appended to both files (per-gene rows of a fold that never reached
the summary, i.e. an interrupted write, are dropped and redone):

- benchmarks/results/hggep/folds_per_gene.csv: protocol, fold, section, method, weights, val, fit_seconds, gene, pcc, ...
- benchmarks/results/hggep/folds_summary.csv: per fold, mean / median r over the 785 genes and the top-50 variable
  genes, CPU and wall seconds, CPU s per epoch, the machine and its load.

Optional arguments: a Python dict of HGGEPConfig fields (default: none, the CPU profile), a tag for the file names, and
`even`/`odd` to run only every other entry of PLAN (two processes, two tags, then `merge` as the 4th argument folds
<tag>_even and <tag>_odd into <tag>).
"""
import os, platform, resource, sys, time
from pathlib import Path

import torch

torch.set_num_threads(1)
import pandas as pd

import stlit.hggep as hg
import stlit.img2expr as ie
from stlit.data import load

fields = eval(sys.argv[1]) if len(sys.argv) > 1 else {}
tag = sys.argv[2] if len(sys.argv) > 2 else "folds"
out = Path("benchmarks/results/hggep")
SECTIONS = ["B4", "C2", "C3", "C4", "C5", "C6"]
# (protocol, held-out sections of one fold), in this order: C6 first (the fold measured before), then the patient fold
# holding out B (train C2-C6, test B4), then the patient fold holding out C (train B4 alone, test C2-C6: one training,
# five held-out sections, about a quarter of a 5-section fold's CPU), then the leak-free C2-C5, and leak-free B4 last:
# at fixed epochs it trains on the same five sections as the patient fold holding out B (C2-C6), in another order, so
# it adds only a second draw of the training order to a number already measured. Sections already in <tag>_summary.csv
# under that protocol are skipped.
PLAN = [("leak_free", ("C6",)), ("patient", ("B4",)), ("patient", ("C2", "C3", "C4", "C5", "C6")),
        ("leak_free", ("C2",)), ("leak_free", ("C3",)), ("leak_free", ("C4",)), ("leak_free", ("C5",)),
        ("leak_free", ("B4",))]


def machine() -> str:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{platform.node()}: {os.cpu_count()} cores ({cpu}), torch {torch.__version__} 1 thread, shared with other jobs"


part = sys.argv[3] if len(sys.argv) > 3 else None
if part == "merge":
    for kind in ("summary", "per_gene"):
        parts = [out / f"{tag}_{p}_{kind}.csv" for p in ("even", "odd")]
        frames = [pd.read_csv(f) for f in [out / f"{tag}_{kind}.csv", *parts] if f.exists()]
        pd.concat(frames, ignore_index=True).to_csv(out / f"{tag}_{kind}.csv", index=False)
        for f in parts:
            f.unlink(missing_ok=True)
    sys.exit(0)
if part in ("even", "odd"):
    PLAN = PLAN[part == "odd"::2]
    tag = f"{tag}_{part}"
summary_csv, per_gene_csv = out / f"{tag}_summary.csv", out / f"{tag}_per_gene.csv"
summary = pd.read_csv(summary_csv).to_dict("records") if summary_csv.exists() else []
done = {(r["protocol"], r["section"]) for r in summary}
rows = []
if per_gene_csv.exists():
    old = pd.read_csv(per_gene_csv)
    rows.append(old[[(p, s) in done for p, s in zip(old.protocol, old.section)]])
todo = [(p, tests) for p, tests in PLAN if not all((p, t) in done for t in tests)]
print(f"done already: {sorted(done)}; to do: {todo}", flush=True)

data = {s: load("her2st", section=s) for s in SECTIONS} if todo else {}
top = ie.most_variable_genes([ie.expression_target(a) for a in data.values()], n=50) if todo else []
for protocol, tests in todo:
    load_before, cpu, wall = os.getloadavg()[0], time.process_time(), time.perf_counter()
    store = {}
    table = hg.cross_validate(list(data.values()), protocol=protocol, test_sections=list(tests), seed=0, device="cpu",
                              verbose=False, store=store, **fields)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    model = next(iter(store["models"].values()))
    rows.append(table)
    pd.concat(rows, ignore_index=True).to_csv(per_gene_csv, index=False)
    for s in ie.summarise(table, top_genes=top).to_dict("records"):  # one row per held-out section of the fold
        summary.append({**s, "train_sections": " ".join(model.inputs["train_sections"]), "epochs": len(model.history),
                        "cpu_seconds": round(cpu, 1), "wall_seconds": round(wall, 1),  # of the whole fold (train + all tests)
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
    pd.DataFrame(summary).to_csv(summary_csv, index=False)
