"""MAGNET cost on CPU: time for 120 epochs on seqFISH, and peak memory of the default path at 20,000 and 100,000 cells.

Usage (from the repository root):
    python benchmarks/magnet_scale.py time                 # 120 epochs on seqFISH (1,597 cells)
    python benchmarks/magnet_scale.py memory 5000 20000 100000

`memory` runs each size in a fresh subprocess (peak RSS is per process) on seqFISH tiled side by side with jitter
(copies of the tissue shifted in x, expression with 1% noise). Reduced preprocessing so that it finishes on a laptop
CPU: 20 LR permutations, the covariance GRN (no graphical lasso), node2vec with 1 walk per node, the code's averaged
target (SNF's fixed-point iterations are the slow part at 100k cells, not the memory), and 2 training epochs
(per-epoch memory does not grow with the epoch count). Everything else is the default path: sampled negatives,
batched InfoNCE, and attention='auto' (SDPA up to 20,000 cells, neighbourhood attention above).
Results are appended to benchmarks/results/magnet_scale.csv.
"""
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "results"


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def tiled_seqfish(n_cells: int, seed: int = 0):
    import anndata as ad
    from stlit.data import load
    base = load("seqfish_deeplinc")
    rng = np.random.default_rng(seed)
    reps = int(np.ceil(n_cells / base.n_obs))
    X = np.asarray(base.X, dtype=np.float32)
    xy = base.obsm["spatial"]
    width = np.ptp(xy[:, 0]) + 100
    Xs = np.vstack([X + 0.01 * rng.standard_normal(X.shape).astype(np.float32) for _ in range(reps)])[:n_cells]
    xys = np.vstack([xy + [r * width, 0] for r in range(reps)])[:n_cells]
    xys = xys + rng.uniform(-0.5, 0.5, xys.shape)
    adata = ad.AnnData(Xs)
    adata.var_names = base.var_names
    adata.obsm["spatial"] = xys
    adata.uns["dataset"] = {"species": "mouse"}
    return adata


def one_size(n_cells: int):
    import torch
    from stlit import magnet
    torch.set_num_threads(1)
    start = rss_mb()
    adata = tiled_seqfish(n_cells)
    t0 = time.perf_counter()
    inputs = magnet.prepare(adata, seed=0, lr_permutations=20, grn_method="covariance", node2vec_walks_per_node=1,
                            target_fusion="average")
    t1 = time.perf_counter()
    after_prepare = rss_mb()
    res = magnet.fit(adata, inputs=inputs, seed=0, epochs=2, eval_every=2, verbose=False)
    t2 = time.perf_counter()
    row = dict(n_cells=n_cells, rss_start_mb=start, rss_after_prepare_mb=after_prepare, rss_peak_mb=rss_mb(),
               prepare_s=t1 - t0, fit_2_epochs_s=t2 - t1, train_s_per_epoch=res.seconds["train"] / 2,
               attention=adata.uns["magnet"]["params"]["attention_mode"], ap=res.scores["ap"])
    print(json.dumps(row))


def time_seqfish(epochs: int = 120):
    import torch
    from stlit import magnet
    from stlit.data import load
    torch.set_num_threads(1)
    adata = load("seqfish_deeplinc")
    inputs = magnet.prepare(adata, seed=0)
    res = magnet.fit(adata, inputs=inputs, seed=0, epochs=epochs, protocol="paper", verbose=False)
    print(json.dumps(dict(n_cells=adata.n_obs, epochs=epochs, prepare=inputs.seconds, train_s=res.seconds["train"],
                          ap=res.scores["ap"], torch_threads=1)))


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "time"
    if mode == "one":
        one_size(int(sys.argv[2]))
    elif mode == "time":
        time_seqfish()
    elif mode == "memory":
        import pandas as pd
        OUT.mkdir(exist_ok=True)
        rows = []
        for n in map(int, sys.argv[2:] or ["5000", "20000", "100000"]):
            proc = subprocess.run([sys.executable, __file__, "one", str(n)], capture_output=True, text=True)
            line = [l for l in proc.stdout.splitlines() if l.startswith("{")]
            if proc.returncode or not line:
                print(proc.stderr[-2000:])
                continue
            rows.append(json.loads(line[-1]))
            print(rows[-1], flush=True)
        frame = pd.DataFrame(rows)
        frame.to_csv(OUT / "magnet_scale.csv", mode="a", header=not (OUT / "magnet_scale.csv").exists(), index=False)
        print(frame.to_string())
