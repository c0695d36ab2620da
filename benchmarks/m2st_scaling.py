"""m2ST CPU cost: wall time of the whole pipeline on DLPFC 151673, and peak memory of autoencoder + clustering when the
real slice is tiled to 20,000 and 100,000 spots (block-diagonal graph, features with small noise).

Each size runs in a fresh subprocess; the peak resident memory (VmHWM) is reset after the data are tiled, so
`peak_increment_gib` = peak during autoencoder + clustering − resident memory before them (inputs included in both).
Usage:  python benchmarks/m2st_scaling.py [--sizes 5000 20000 100000] [--epochs 2] [--pipeline-epochs 200] [--append]
Writes benchmarks/results/m2st_scaling.csv (one row per size, plus the pipeline row).
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _memory import reset_peak as _reset_peak, status as _status  # noqa: E402


def _dlpfc():
    "DLPFC 151673: CCST-recipe PCA (200) and the Visium ring graph."
    from stlit import m2st
    from stlit.data import load
    from stlit.graph import spatial_neighbors
    a = load("dlpfc_151673")
    spatial_neighbors(a, method="visium")
    X = m2st.preprocess(a, n_pcs=200)
    return a, X, a.obsp["spatial_connectivities"]





def run_size(n_spots: int, epochs: int, threads: int) -> dict:
    "Tile DLPFC to n_spots, train the AE for `epochs`, cluster once; report times and peak RSS (GiB)."
    import numpy as np
    import scipy.sparse as sp
    import torch
    from stlit import m2st
    torch.set_num_threads(threads)
    _, X, A = _dlpfc()
    reps = int(np.ceil(n_spots / X.shape[0]))
    rng = np.random.default_rng(0)
    Xt = np.vstack([X + rng.normal(0, 0.01, X.shape).astype(np.float32) for _ in range(reps)])[:n_spots]
    At = sp.block_diag([A] * reps, format="csr")[:n_spots, :n_spots]
    import gc
    del X, A
    gc.collect()
    _reset_peak()
    base = _status("VmRSS")
    cfg = m2st.M2STConfig(n_epochs=epochs)
    tic = time.perf_counter()
    res = m2st.train_autoencoder(Xt, At, cfg, seed=0)
    views = m2st.embed(res.model, Xt, At)
    t_ae = time.perf_counter() - tic
    tic = time.perf_counter()
    m2st.multiscale_cluster(views, 7, n_init=1, max_iter=5, seed=0)
    t_cl = time.perf_counter() - tic
    peak = _status("VmHWM")  # peak resident memory since _reset_peak()
    return dict(kind="tiled", n_spots=n_spots, n_edges=int(At.nnz), epochs=epochs, threads=threads,
                ae_seconds=round(t_ae, 2), ae_seconds_per_epoch=round(t_ae / epochs, 3),
                cluster_seconds_5_iter=round(t_cl, 2), peak_rss_gib=round(peak, 3),
                rss_before_model_gib=round(base, 3), peak_increment_gib=round(peak - base, 3),
                load_avg_5min=round(os.getloadavg()[1], 2))  # other work on the machine inflates the seconds


def run_pipeline(epochs: int, threads: int) -> dict:
    "The whole m2ST pipeline on DLPFC 151673 from counts: preprocess + graph + AE + clustering (label-free)."
    import torch
    from stlit import m2st
    from stlit.data import load
    from stlit.metrics import cluster_scores
    torch.set_num_threads(threads)
    a = load("dlpfc_151673")
    tic = time.perf_counter()
    # counts → CCST recipe, Visium ring graph (1 spot has no ring neighbour: kept, with a warning), AE, clustering
    res = m2st.fit(a, 7, seed=0, n_epochs=epochs, verbose=False)
    wall = time.perf_counter() - tic
    ari = cluster_scores(a.obs["truth"], res.labels)["ari"]
    return dict(kind="pipeline_dlpfc_151673", n_spots=a.n_obs, epochs=epochs, threads=threads,
                wall_seconds=round(wall, 1), **{f"{k}_seconds": round(v, 1) for k, v in res.seconds.items()},
                ari=round(ari, 4), peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                load_avg_5min=round(os.getloadavg()[1], 2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="*", default=[5000, 20000, 100000])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--pipeline-epochs", type=int, default=200, help="0 skips the pipeline timing")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", type=str, default=None)
    p.add_argument("--append", action="store_true", help="merge into the existing CSV (rows of the same kind/size "
                                                          "are replaced) instead of overwriting it")
    args = p.parse_args()
    if args.child:  # inside a fresh subprocess
        spec = json.loads(args.child)
        row = run_pipeline(spec["epochs"], args.threads) if spec["kind"] == "pipeline" else \
            run_size(spec["n"], spec["epochs"], args.threads)
        print("RESULT " + json.dumps(row), flush=True)
        return
    import pandas as pd
    jobs = [dict(kind="tiled", n=n, epochs=args.epochs) for n in args.sizes]
    if args.pipeline_epochs:
        jobs.append(dict(kind="pipeline", epochs=args.pipeline_epochs))
    rows = []
    for job in jobs:
        proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", json.dumps(job)],
                              capture_output=True, text=True)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not lines:
            rows.append(dict(kind=job["kind"], n_spots=job.get("n"), error=proc.stderr[-300:]))
        else:
            rows.append(json.loads(lines[-1][7:]))
        print(rows[-1], flush=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    table = pd.DataFrame(rows)
    if args.append and (out / "m2st_scaling.csv").exists():
        old = pd.read_csv(out / "m2st_scaling.csv")
        key = ["kind", "n_spots"]
        old = old[~old.set_index(key).index.isin(table.set_index(key).index)]
        table = pd.concat([old, table], ignore_index=True).sort_values(["kind", "n_spots"])
    table.to_csv(out / "m2st_scaling.csv", index=False)


if __name__ == "__main__":
    main()
