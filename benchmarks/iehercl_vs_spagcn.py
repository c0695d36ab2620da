"""IE-HERCL's default `fit` (CNN features of the image included) and SpaGCN (`stlit.baselines.run('spagcn')`) on
DLPFC 151673, back to back in the same conditions: each run a fresh subprocess with one torch/BLAS/OpenMP thread,
the two methods alternating (rep r runs IE-HERCL first when r is even, SpaGCN first when r is odd), CPU seconds of
the process (comparable on a shared machine) beside wall seconds (which grow with the load, recorded too).
ARI against the layer labels is reported, never used to choose anything.
Usage:  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/iehercl_vs_spagcn.py \
            [--reps 2] [--label NAME]
Appends to benchmarks/results/iehercl_vs_spagcn.csv (resumable: (label, rep, method) rows present are skipped).
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "results" / "iehercl_vs_spagcn.csv"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def child(method: str) -> dict:
    import torch
    torch.set_num_threads(1)
    import numpy as np
    from stlit import baselines, iehercl
    from stlit.data import load
    from stlit.metrics import cluster_scores
    a = load("dlpfc_151673")
    truth = a.obs["truth"]
    K = int(truth.nunique())
    load0 = os.getloadavg()[0]
    tic, cpu = time.perf_counter(), time.process_time()
    if method == "iehercl":
        labels = iehercl.fit(a, K, seed=0, verbose=False, device="cpu").labels
    else:
        baselines.run("spagcn", a, K, seed=0, key_added="sg")
        labels = a.obs["sg"].astype(str).to_numpy()
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    ok = truth.notna().to_numpy()
    ari = cluster_scores(truth[ok].astype(str).to_numpy(), np.asarray(labels)[ok])["ari"]
    return dict(cpu_s=round(cpu, 1), wall_s=round(wall, 1), ari=round(float(ari), 4), load_1min_start=round(load0, 1),
                load_1min_end=round(os.getloadavg()[0], 1), torch_threads=torch.get_num_threads())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=2)
    p.add_argument("--label", default="default")
    p.add_argument("--child", default="")
    args = p.parse_args()
    if args.child:
        print("RESULT " + json.dumps(child(args.child)), flush=True)
        return
    import pandas as pd
    done = set()
    if OUT.exists():
        old = pd.read_csv(OUT)
        done = set(zip(old.label, old.rep, old.method))
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=OUT.parent).stdout.strip()
    for rep in range(args.reps):
        for method in (["iehercl", "spagcn"] if rep % 2 == 0 else ["spagcn", "iehercl"]):
            if (args.label, rep, method) in done:
                continue
            proc = subprocess.run([sys.executable, __file__, "--child", method], capture_output=True, text=True,
                                  env={**os.environ, **ONE_THREAD})
            found = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
            if proc.returncode != 0 or not found:
                sys.exit(proc.stderr[-3000:])
            row = dict(label=args.label, commit=commit, dataset="dlpfc_151673", rep=rep, method=method,
                       **json.loads(found[-1][7:]), machine=f"{os.cpu_count()} cores",
                       date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"))
            pd.DataFrame([row]).to_csv(OUT, mode="a", header=not OUT.exists(), index=False)
            print(row, flush=True)


if __name__ == "__main__":
    main()
