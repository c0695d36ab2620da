"""Why mclust EEE on 50 principal components of DLPFC 151673 is degenerate (ARI ~0), and what avoids it.

Features: `stlit.pp.preprocess` (3,000 Seurat HVGs, normalise, log1p, scale, PCA 50, seed 0) of DLPFC 151673; K = 7.
- part `sweep`: `stlit.cluster.mclust` (python backend, R's labels) on the first 50/30/20/10 components, with mclust's
  hierarchical start (`init='hc'`) and with 10 k-means++ restarts (`init='kmeans'`): ARI and cluster sizes.
- part `hc`: the hierarchical start alone on R's 2,000-spot subset, on the SVD-whitened data (mclust's default
  `hcUse='SVD'`) and on the PCA scores as they are (`hcUse='VARS'`), each followed by mclust's EM on all spots;
  and how far out (radius in the whitened space) the spots left as singletons lie.
Run (one BLAS thread): python benchmarks/mclust_pca_dims.py [sweep] [hc]   -> prints; results kept in
benchmarks/results/mclust_pca_dims.txt.
"""
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

import stlit  # noqa: E402
from stlit import pp  # noqa: E402
from stlit.cluster import _e_step_eee, _m_step_eee, em_eee, hc_vvv, mclust, r_sample, svd_transform  # noqa: E402
from stlit.metrics import cluster_scores  # noqa: E402


def features():
    a = stlit.data.load("dlpfc_151673")
    b = a.copy()
    pp.preprocess(b, n_top_genes=3000, n_comps=50, seed=0)
    return b.obsm["X_pca"].astype(float), a.obs["truth"]


def sweep(X, truth):
    for dims in (50, 30, 20, 10):
        for init in ("hc", "kmeans"):
            t = time.time()
            lab = mclust(X[:, :dims], 7, init=init)
            print(f"dims={dims} init={init} ARI={cluster_scores(truth, lab)['ari']:.4f} "
                  f"sizes={np.bincount(lab, minlength=7).tolist()} {time.time() - t:.1f}s", flush=True)


def hc_start(X, truth):
    sub = r_sample(X.shape[0], 2000, 2020)  # the subset of mclust(seed=2020), the default the sweep used
    for dims in (50, 20):
        Xd = X[:, :dims]
        sd = Xd.std(0, ddof=1)
        print(f"dims={dims}: PC sd first/last {sd[0]:.2f}/{sd[-1]:.2f}", flush=True)
        for use, Z in (("SVD (mclust default: whitened)", svd_transform(Xd[sub])), ("VARS (PCA scores as they are)", Xd[sub])):
            t = time.time()
            hc = hc_vvv(Z, 7)
            z_all = _e_step_eee(Xd, *_m_step_eee(Xd[sub], np.eye(7)[hc]))[0]
            z, ll, _, _ = em_eee(Xd, _m_step_eee(Xd, z_all))
            lab = z.argmax(1)
            print(f"  hc on {use}: hc sizes {sorted(np.bincount(hc).tolist())}; after EM ARI "
                  f"{cluster_scores(truth, lab)['ari']:.3f} loglik {ll:.0f} sizes "
                  f"{sorted(np.bincount(lab, minlength=7).tolist())} ({time.time() - t:.0f}s)", flush=True)
            if use.startswith("SVD"):
                hc_svd, Z_svd = hc, Z
        if dims == 50:
            r = np.sqrt((Z_svd ** 2).sum(1))
            single = [k for k in range(7) if (hc_svd == k).sum() == 1]
            print("  whitened radius: median %.2f, singletons' radii %s"
                  % (np.median(r), [round(float(r[hc_svd == k][0]), 2) for k in single]), flush=True)


if __name__ == "__main__":
    parts = sys.argv[1:] or ["sweep", "hc"]
    X, truth = features()
    if "sweep" in parts:
        sweep(X, truth)
    if "hc" in parts:
        hc_start(X, truth)
