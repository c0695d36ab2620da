"""IE-HERCL speed: the default `fit` on DLPFC 151673 (counts + lowres image, CNN features included), one torch/BLAS
thread, per stage: wall and CPU seconds of the process (`fit`'s `seconds` and `cpu_seconds`), the machine and its load.

CPU seconds are the figure to compare on a shared machine (wall grows with the load). Each run is a fresh
subprocess; `--label` names the code state (e.g. 'before' / 'after'), `--fields` passes IEHERCLConfig fields
(JSON) for a diagnostic variant. Per-stage CPU comes from `fit`'s `cpu_seconds` (older rows, from code without
per-stage CPU: those columns are NaN). ARI against the layer labels is reported, never used to choose anything here.
Usage:  python benchmarks/iehercl_speed.py --label after [--fields '{"n_epochs": 60}'] [--dataset dlpfc_151673]
            [--history NAME]  # also the per-epoch losses -> results/iehercl_speed_history_NAME.csv
Appends to benchmarks/results/iehercl_speed.csv.
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _memory import status as _status  # noqa: E402

DATASETS = ("dlpfc_151673", "her2st_a1")
STAGES = ("inputs", "graphs", "train", "cluster")  # of `fit`


def child(dataset: str, fields: dict, seed: int, history: str = "") -> dict:
    import torch
    torch.set_num_threads(1)
    from stlit import iehercl
    from stlit.data import load
    from stlit.metrics import cluster_scores
    a = load(dataset) if dataset != "her2st_a1" else load("her2st", section="A1")
    truth = a.obs["truth"]
    load0 = os.getloadavg()[0]
    tic, cpu = time.perf_counter(), time.process_time()
    res = iehercl.fit(a, truth.nunique(), seed=seed, verbose=False, device="cpu", **fields)
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    ok = truth.notna().to_numpy()
    if history:  # the per-epoch losses (the label-free evidence for the epoch budget)
        res.history.to_csv(HERE / "results" / f"iehercl_speed_history_{history}.csv", index=False)
    return dict(dataset=dataset, n_spots=a.n_obs, seed=seed, fields=json.dumps(fields, sort_keys=True),
                epochs=res.config.n_epochs, wall_s=round(wall, 1), cpu_s=round(cpu, 1),
                **{f"{k}_cpu_s": round(res.cpu_seconds[k], 1) for k in STAGES},
                **{f"{k}_wall_s": round(res.seconds[k], 1) for k in STAGES},
                cpu_s_per_epoch=round(res.cpu_seconds["train"] / res.config.n_epochs, 3),
                final_loss=round(float(res.history["loss"].iloc[-1]), 4),
                ari=round(cluster_scores(truth[ok].astype(str), res.labels[ok])["ari"], 4),
                peak_rss_gib=round(_status("VmHWM"), 3), load_start=round(load0, 2),
                load_end=round(os.getloadavg()[0], 2), machine=f"{platform.machine()} {os.cpu_count()} cores",
                torch_threads=torch.get_num_threads())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--label", required=True)
    p.add_argument("--dataset", default="dlpfc_151673", choices=DATASETS)
    p.add_argument("--fields", default="{}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--child", action="store_true")
    p.add_argument("--history", default="", help="also write results/iehercl_speed_history_<NAME>.csv (losses)")
    args = p.parse_args()
    fields = json.loads(args.fields)
    if args.child:
        print("RESULT " + json.dumps(child(args.dataset, fields, args.seed, args.history)), flush=True)
        return
    import pandas as pd
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", "--label", args.label, "--dataset", args.dataset,
                           "--fields", args.fields, "--seed", str(args.seed),
                           "--history", args.history], capture_output=True, text=True, env=env)
    found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not found:
        sys.exit(proc.stderr[-3000:])
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip()
    row = {"label": args.label, "commit": commit, **json.loads(found[-1][7:]),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = HERE / "results" / "iehercl_speed.csv"
    table = pd.DataFrame([row])
    if out.exists():
        table = pd.concat([pd.read_csv(out), table], ignore_index=True)
    table.to_csv(out, index=False)
    print(pd.DataFrame([row]).T.to_string())


if __name__ == "__main__":
    main()
