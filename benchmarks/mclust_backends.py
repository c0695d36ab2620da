"""mclust EEE: the pure-Python backend of `stlit.cluster.mclust` against R's `Mclust` (rpy2), on real embeddings.

Embeddings (7 clusters each, seed 2020, GraphST's recipe `Mclust(X, G=7, modelNames='EEE')`):
- `dlpfc151673_pca20`: DLPFC 151673 (3,639 spots × 5,000 genes), scanpy normalize_total(1e4) + log1p + PCA 20
  (arpack, random_state 0); truth `obs['layer_guess_reordered']` (28 unannotated spots dropped from the truth ARI).
  n > 2,000, so mclust's hc runs on R's random subset of 2,000 spots: this also checks our port of R's sampler.
- `starmap_view1` (1,207 × 128) and `starmap_view2` (1,207 × 64): the m2ST authors' autoencoder output
  `STARmap_embded.mat`; truth `labels.npy` (7 layers).
- `starmap_view{1,2}_pca20`: the same with `pca=20` (GraphST's `clustering()` projects to 20 PCs first).

Per embedding: wall time and process CPU time of each backend (median of 3; R's includes the NumPy→R conversion;
R runs inside this process through rpy2, so its CPU time is counted too), the ratios R / Python, ARI and the fraction of identical labels between the backends, and each backend's ARI against the truth.
Rows with `backend='python-alt'` record the scikit-learn-only alternatives we investigated (one run each): tied
`GaussianMixture` with 10 k-means++ restarts (`init='kmeans'`, best likelihood) and with a Ward-linkage start.

BLAS runs on one thread (OMP/OPENBLAS/MKL_NUM_THREADS default to 1 here) so both backends do the same single-threaded
linear algebra. The machine of record is shared (2 cores, other jobs running): wall times there are inflated by contention, so the
CPU-time columns are the steadier comparison.

Run: `python benchmarks/mclust_backends.py` → prints a table, writes `benchmarks/results/mclust_backends.csv`.
Needs R + mclust + rpy2 for the R columns (they are left empty otherwise) and the real data (`STLIT_DATA`).
"""
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads: one BLAS thread, like R's reference BLAS (override by env)

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import adjusted_rand_score  # noqa: E402

from stlit.cluster import _pca, mclust, r_available  # noqa: E402
from stlit.core import data_dir  # noqa: E402
from stlit.metrics import cluster_scores  # noqa: E402

HERE = Path(__file__).resolve().parent
REPEATS = 3
SEED = 2020
N_CLUSTERS = 7


def embeddings(root: Path) -> dict:
    "name -> (X, truth, pca)."
    import scanpy as sc
    import scipy.io as sio

    ad = sc.read_h5ad(root / "dlpfc_151673" / "dlpfc151673_5000genes.h5ad")
    truth_dlpfc = ad.obs["layer_guess_reordered"].astype(object).to_numpy()
    sc.pp.normalize_total(ad, target_sum=1e4)
    sc.pp.log1p(ad)
    sc.pp.pca(ad, n_comps=20, svd_solver="arpack", random_state=0)
    star = root / "m2st_preprocessed" / "starmap_1207"
    mat = sio.loadmat(star / "STARmap_embded.mat")
    truth_star = np.load(star / "labels.npy").ravel()
    return {"dlpfc151673_pca20": (np.asarray(ad.obsm["X_pca"], float), truth_dlpfc, None),
            "starmap_view1": (mat["view1"].astype(float), truth_star, None),
            "starmap_view2": (mat["view2"].astype(float), truth_star, None),
            "starmap_view1_pca20": (mat["view1"].astype(float), truth_star, 20),
            "starmap_view2_pca20": (mat["view2"].astype(float), truth_star, 20)}


def timed(fn, repeats=REPEATS):
    "(result of the last call, list of wall times, list of process CPU times: R runs in-process, so it is counted)."
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return out, walls, cpus


def ward_start(X, k, seed):
    "Alternative investigated: tied GaussianMixture started from a Ward partition of the standardised data."
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.mixture import GaussianMixture
    from sklearn.preprocessing import StandardScaler
    lab = AgglomerativeClustering(k, linkage="ward").fit_predict(StandardScaler().fit_transform(X))
    means = np.stack([X[lab == j].mean(0) for j in range(k)])
    resid = X - means[lab]
    cov = resid.T @ resid / len(X) + 1e-6 * np.eye(X.shape[1])
    gm = GaussianMixture(k, covariance_type="tied", weights_init=np.bincount(lab) / len(X), means_init=means,
                         precisions_init=np.linalg.inv(cov), tol=1e-6, max_iter=2000, random_state=seed)
    return gm.fit_predict(X)


def main():
    root = data_dir(required=True)
    have_r = r_available()
    rows = []
    for name, (X, truth, pca) in embeddings(root).items():
        py, t_py, c_py = timed(lambda: mclust(X, N_CLUSTERS, backend="python", seed=SEED, pca=pca))
        row = dict(embedding=name, n_obs=X.shape[0], n_dims=pca or X.shape[1], backend="python",
                   variant="hc (mclust's init)", repeats=REPEATS, median_wall_s=float(np.median(t_py)),
                   median_cpu_s=float(np.median(c_py)),
                   ari_truth=cluster_scores(truth, py)["ari"], n_truth_dropped=cluster_scores(truth, py)["n_dropped"])
        if have_r:
            r, t_r, c_r = timed(lambda: mclust(X, N_CLUSTERS, backend="r", seed=SEED, pca=pca))
            row.update(ari_python_vs_r=adjusted_rand_score(r, py), identical_label_fraction=float((r == py).mean()),
                       r_median_wall_s=float(np.median(t_r)), r_ari_truth=cluster_scores(truth, r)["ari"],
                       r_median_cpu_s=float(np.median(c_r)),
                       speed_ratio_r_over_python=float(np.median(t_r) / np.median(t_py)),
                       cpu_ratio_r_over_python=float(np.median(c_r) / np.median(c_py)))
        rows.append(row)
        Xp = X if pca is None else _pca(X, pca, SEED)
        for variant, fn in [("GaussianMixture tied, 10 k-means++ restarts",
                             lambda: mclust(X, N_CLUSTERS, seed=SEED, pca=pca, init="kmeans", n_init=10)),
                            ("GaussianMixture tied, Ward start", lambda: ward_start(Xp, N_CLUSTERS, SEED))]:
            alt, t_alt, c_alt = timed(fn, repeats=1)
            arow = dict(embedding=name, n_obs=X.shape[0], n_dims=pca or X.shape[1], backend="python-alt",
                        variant=variant, repeats=1, median_wall_s=t_alt[0], median_cpu_s=c_alt[0], ari_truth=cluster_scores(truth, alt)["ari"])
            if have_r:
                arow.update(ari_python_vs_r=adjusted_rand_score(r, alt))
            rows.append(arow)
        print(pd.DataFrame(rows[-3:]).to_string(), flush=True)
    df = pd.DataFrame(rows)
    (HERE / "results").mkdir(exist_ok=True)
    df.to_csv(HERE / "results" / "mclust_backends.csv", index=False, float_format="%.4f")
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(df.to_string(index=False))


if __name__ == "__main__":
    main()
