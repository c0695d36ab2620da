"""IE-HERCL CPU cost: wall and CPU time of the default `fit` on DLPFC 151673 (CNN image features included), and peak
memory when the real slice is tiled to 20,000 and 100,000 spots.

Tiling: the DLPFC counts are repeated (tile t shifted by t x 15,000 px in x, so tiles never touch) and the slice's
CNN features are repeated as `image_rep` (the CNN itself streams crops in chunks of 1,024, so its memory does not grow
with the number of spots). Each size runs in a fresh subprocess; the peak resident memory (VmHWM) is reset after the
data are built, so `peak_increment_gib` = peak during fit - resident memory before it. The whole fit runs (inputs,
heat-kernel kNN graph, random walks, training, Sinkhorn, mclust on PCA-20, refinement) with few epochs: memory does not
depend on the number of epochs; `seconds_per_epoch` gives the training cost.
`--rss-cap-gib` stops a size whose resident memory passes the cap (a shared machine: better an error row than the
kernel's OOM killer); the row then says where it stopped.
Usage:  python benchmarks/iehercl_scaling.py [--sizes 20000 100000] [--epochs 2] [--pipeline] [--append] [--rss-cap-gib 14]
Writes benchmarks/results/iehercl_scaling.csv.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _memory import reset_peak as _reset_peak, status as _status  # noqa: E402


def run_size(n_spots: int, epochs: int, threads: int, kind: str = "tiled") -> dict:
    import anndata as ad
    import numpy as np
    import scipy.sparse as sp
    import torch
    from stlit import iehercl
    from stlit.data import load
    torch.set_num_threads(threads)
    a = load("dlpfc_151673")
    cache = Path(tempfile.gettempdir()) / "stlit_iehercl_dlpfc151673_cnn.npy"  # the same for every size: once
    if cache.exists():
        feats = np.load(cache)
    else:
        feats, _ = iehercl.image_inputs(a, device="cpu")
        np.save(cache, feats)
    reps = int(np.ceil(n_spots / a.n_obs))
    X = sp.vstack([sp.csr_matrix(a.X)] * reps, format="csr")[:n_spots]
    xy = np.vstack([a.obsm["spatial"] + [15000.0 * t, 0.0] for t in range(reps)])[:n_spots]
    rng = np.random.default_rng(0)
    img = np.vstack([feats + rng.normal(0, 0.01, feats.shape).astype(np.float32) for _ in range(reps)])[:n_spots]
    b = ad.AnnData(X=X, obsm={"spatial": xy, "img": img})
    b.obs_names = [f"s{i}" for i in range(n_spots)]
    b.var_names = a.var_names
    del a, X, xy, img
    import gc
    gc.collect()
    _reset_peak()
    base = _status("VmRSS")
    samples, stop = [], threading.Event()
    cap, t0 = float(os.environ.get("IEHERCL_RSS_CAP_GIB", "inf")), time.perf_counter()
    def sample():  # RSS every 20 ms, attributed to fit's stages by their durations afterwards
        while not stop.is_set():
            samples.append((time.perf_counter(), _status("VmRSS")))
            if samples[-1][1] > cap:  # a shared machine: stop before the kernel's OOM killer picks a victim
                print(f"RSS_CAP {samples[-1][1]:.2f} GiB > {cap} GiB after {time.perf_counter() - t0:.0f} s", flush=True)
                os._exit(3)
            time.sleep(0.02)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tic, cpu = time.perf_counter(), time.process_time()
    res = iehercl.fit(b, 7, image_rep="img", n_epochs=epochs, pretrain_epochs=max(epochs - 1, 0), verbose=False,
                      device="cpu")
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    stop.set()
    sampler.join()
    peak = _status("VmHWM")
    stage_peak, start = {}, tic
    for stage in ("inputs", "graphs", "train", "cluster"):
        end = start + res.seconds[stage]
        inside = [r for t, r in samples if start <= t <= end]
        stage_peak[f"{stage}_peak_increment_gib"] = round(max(inside) - base, 3) if inside else float("nan")
        start = end
    return dict(kind=kind, n_spots=n_spots, epochs=epochs, threads=threads, wall_seconds=round(wall, 1),
                cpu_seconds=round(cpu, 1), **_stage_seconds(res),
                seconds_per_epoch=round(res.seconds["train"] / epochs, 2), similarity_nnz=res.inputs["similarity"],
                not_negative_nnz=res.inputs["not_negative"], peak_rss_gib=round(peak, 3),
                rss_before_fit_gib=round(base, 3), peak_increment_gib=round(peak - base, 3),
                kib_per_spot=round((peak - base) * 2**20 / n_spots, 1), **stage_peak,
                load_avg_5min=round(os.getloadavg()[1], 2))


def _stage_seconds(res) -> dict:
    "inputs_seconds, inputs_cpu_seconds, graphs_seconds, ... of one fit (wall, then CPU of the process)."
    return {f"{k}{cpu}_seconds": round(v, 1) for k in res.seconds
            for cpu, v in (("", res.seconds[k]), ("_cpu", res.cpu_seconds[k]))}


def run_pipeline(threads: int) -> dict:
    "The default fit on DLPFC 151673 from counts and the lowres image (CNN features included)."
    import torch
    from stlit import iehercl
    from stlit.data import load
    from stlit.metrics import cluster_scores
    torch.set_num_threads(threads)
    a = load("dlpfc_151673")
    tic, cpu = time.perf_counter(), time.process_time()
    res = iehercl.fit(a, 7, seed=0, verbose=False, device="cpu")
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    return dict(kind="pipeline_dlpfc_151673", n_spots=a.n_obs, epochs=res.config.n_epochs, threads=threads,
                wall_seconds=round(wall, 1), cpu_seconds=round(cpu, 1),
                **_stage_seconds(res),
                seconds_per_epoch=round(res.seconds["train"] / res.config.n_epochs, 2),
                ari=round(cluster_scores(a.obs["truth"], res.labels)["ari"], 4),
                peak_rss_gib=round(_status("VmHWM"), 3), load_avg_5min=round(os.getloadavg()[1], 2))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="*", default=[20000, 100000])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--pipeline", action="store_true", help="also time the default fit on DLPFC 151673")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--kind", default="tiled", help="row label of the tiled runs (e.g. the code state)")
    p.add_argument("--rss-cap-gib", type=float, default=float("inf"),
                   help="stop a size whose resident memory passes this (shared machine; recorded as an error row)")
    p.add_argument("--child", type=str, default=None)
    p.add_argument("--append", action="store_true", help="merge into the existing CSV (same kind/size replaced)")
    args = p.parse_args()
    if args.child:
        spec = json.loads(args.child)
        row = run_pipeline(args.threads) if spec["kind"] == "pipeline" else run_size(spec["n"], spec["epochs"],
                                                                                    args.threads, spec["kind"])
        print("RESULT " + json.dumps(row), flush=True)
        return
    import pandas as pd
    jobs = [dict(kind=args.kind, n=n, epochs=args.epochs) for n in args.sizes]
    if args.pipeline:
        jobs.append(dict(kind="pipeline"))
    env = {**os.environ, "IEHERCL_RSS_CAP_GIB": str(args.rss_cap_gib), "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    rows = []
    for job in jobs:
        proc = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", json.dumps(job)],
                              capture_output=True, text=True, env=env)
        found = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        if proc.returncode != 0 or not found:
            capped = [line for line in proc.stdout.splitlines() if line.startswith("RSS_CAP ")]
            rows.append(dict(kind=job["kind"], n_spots=job.get("n"), epochs=job.get("epochs"),
                             error=(capped[-1] if capped else proc.stderr[-500:]).replace("\n", " ")))
        else:
            rows.append(json.loads(found[-1][7:]))
        print(rows[-1], flush=True)
    out = HERE / "results" / "iehercl_scaling.csv"
    table = pd.DataFrame(rows)
    if args.append and out.exists():
        old = pd.read_csv(out)
        keep = ~old.set_index(["kind", "n_spots"]).index.isin(table.set_index(["kind", "n_spots"]).index)
        table = pd.concat([old[keep], table], ignore_index=True)
    table.to_csv(out, index=False)
    print(table.to_string())


if __name__ == "__main__":
    main()
