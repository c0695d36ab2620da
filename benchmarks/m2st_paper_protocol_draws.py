"""How the m2ST paper protocol's number depends on the number of label-scored runs (breast cancer A1).

The authors report the best ARI over 3,200 random clustering runs (one per grid point of `main.m`). This script trains
the autoencoder once on the authors' breast-cancer input (seed 0, 100 epochs, hidden 128), then runs the multi-scale
clustering from the code's random initial indicator `n_init` times at each of 4 grid points (λ1 ∈ {1e-5, 0.1},
λ3 ∈ {1e-3, 1}, λ2 = 1e-5, s = 40) and records the ARI of every run: its mean/sd is what one run gives, its max is
what the paper protocol reports with that many candidates.
Usage:  OPENBLAS_NUM_THREADS=1 python benchmarks/m2st_paper_protocol_draws.py [--n-init 96]
Writes benchmarks/results/m2st_paper_protocol_draws.csv (one row per run).
"""
import argparse
import itertools
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from stlit import m2st
from stlit.data import load
from stlit.metrics import cluster_scores

HERE = Path(__file__).resolve().parent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n-init", type=int, default=96)
    p.add_argument("--epochs", type=int, default=100)
    args = p.parse_args()
    torch.set_num_threads(1)
    a = load("m2st_bc_a1")
    truth = a.obs["truth"].to_numpy()
    r = m2st.fit(a, 20, use_rep="X", graph_key="adjacency", seed=0, n_epochs=args.epochs, hidden_dim=128,
                 n_init=3, max_iter=30)
    rows, tic = [], time.perf_counter()
    for l1, l3 in itertools.product([1e-5, 1e-1], [1e-3, 1.0]):
        res = m2st.multiscale_cluster(r.embeddings, 20, dim_specific=40, lambda1=l1, lambda2=1e-5, lambda3=l3,
                                      init="random", n_init=args.n_init, max_iter=50, seed=1000)
        rows += [dict(lambda1=l1, lambda3=l3, restart=i, ari=cluster_scores(truth, lab)["ari"],
                      n_found=len(np.unique(lab)), objective=res.restart_objectives[i])
                 for i, lab in enumerate(res.restart_labels)]
    t = pd.DataFrame(rows)
    t.to_csv(HERE / "results" / "m2st_paper_protocol_draws.csv", index=False)
    print(f"{len(t)} runs in {time.perf_counter() - tic:.0f} s; ARI mean {t.ari.mean():.3f} sd {t.ari.std():.3f} "
          f"max {t.ari.max():.4f} (paper: best of 3,200 runs 0.6475)")
    rng = np.random.default_rng(0)  # expected best ARI with fewer candidates: subsample the runs
    for n in (8, 48, 128):
        best = [rng.choice(t.ari.to_numpy(), n, replace=False).max() for _ in range(2000)]
        print(f"expected best of {n} runs: {np.mean(best):.3f}")


if __name__ == "__main__":
    main()
