"""Why m2ST's label-free default is below the ten-line baseline (issue 12, section 2): a DIAGNOSIS, which reads labels.

Nothing here chooses a default (that is benchmarks/m2st_smooth_selection.py, on data never scored). This script
separates the two halves of each pipeline on two labelled sets (DLPFC 151673 and STARmap mPFC BZ9), per seed:
  inputs   : 'pca'            m2ST's own features (HVG 3,000 seurat_v3 -> log -> scale -> PCA 30, as the baseline's);
             'pca_smooth'     the same, averaged over each spot and its neighbours in m2ST's graph;
             'pca_smooth_knn6' the same, averaged over the baseline's graph (directed 6-NN of the coordinates + self):
                              with the tied GMM this IS `smoothed_pca_gmm`;
             'm2st'           m2ST's Part A embeddings (M2STConfig defaults of the time, feature_scale=False;
                              trained once per seed);
             'm2st_smooth'    those, averaged over m2ST's graph (M2STConfig.smooth=True);
  clusterers: 'multiscale'    m2ST's Part B at its defaults (each input as its list of scales; PCA = one scale);
             'mclust'         M2STConfig(clustering='mclust'): EEE mixture (stlit.cluster.mclust, PCA 20) of the
                              concatenation;
             'tied_gmm'       the baseline's clusterer: sklearn GaussianMixture(tied, n_init=3, random_state=seed).
ARI/NMI against the truth (spots without a label not scored). One thread.
Epochs (--epochs, rows appended with input 'm2st_200ep*'): Part A trained for all 200 epochs (loss_patience=None, the
authors' code) instead of the loss-based stop; clustered by Part B alone ('m2st_200ep') and with the feature scale
('m2st_200ep+feature_scale'), and by the tied GMM.

Usage: OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/m2st_smooth_diagnosis.py [--epochs]
Writes benchmarks/results/m2st_smooth_diagnosis.csv (resumable per (dataset, seed)) and prints the mean-ARI table.
"""
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "benchmarks" / "results" / "m2st_smooth_diagnosis.csv"
DATASETS = {"dlpfc_151673": dict(name="dlpfc_151673"), "starmap_mpfc_bz9": dict(name="starmap_mpfc", section="BZ9")}
SEEDS = [0, 1, 2]


def _todo(have):
    "(dataset, AnnData, truth, K, seed) for every (dataset, seed) not in `have`."
    import stlit
    for dataset, spec in DATASETS.items():
        a = stlit.data.load(spec["name"], **{k: v for k, v in spec.items() if k != "name"})
        truth, K = a.obs["truth"], int(a.obs["truth"].nunique())
        for seed in SEEDS:
            if (dataset, seed) not in have:
                yield dataset, a, truth, K, seed


def epochs() -> None:
    "The --epochs rows: Part A for all 200 epochs (the authors' code), Part B with and without the feature scale."
    import torch
    torch.set_num_threads(1)
    from sklearn.mixture import GaussianMixture

    import stlit
    from stlit import m2st
    from stlit.metrics import cluster_scores
    done = pd.read_csv(CSV)
    have = set(zip(done.loc[done["input"].str.startswith("m2st_200ep"), "dataset"], done["seed"]))
    for dataset, a, truth, K, seed in _todo(have):
        cpu = time.process_time()
        res = m2st.fit(a.copy(), K, seed=seed, verbose=False, device="cpu", loss_patience=None, feature_scale=False)
        rows = [dict(dataset=dataset, seed=seed, input="m2st_200ep", clusterer="multiscale",
                     **{k: cluster_scores(truth, res.labels)[k] for k in ("ari", "nmi")},
                     cpu_seconds=time.process_time() - cpu)]
        cpu = time.process_time()
        fs = m2st.fit(a.copy(), K, seed=seed, verbose=False, embeddings=res.embeddings, feature_scale=True).labels
        rows.append(dict(dataset=dataset, seed=seed, input="m2st_200ep+feature_scale", clusterer="multiscale",
                         **{k: cluster_scores(truth, fs)[k] for k in ("ari", "nmi")},
                         cpu_seconds=time.process_time() - cpu))
        cpu = time.process_time()
        gmm = GaussianMixture(K, covariance_type="tied", n_init=3, random_state=seed)
        labels = gmm.fit_predict(np.hstack(res.embeddings).astype(np.float64))
        rows.append(dict(dataset=dataset, seed=seed, input="m2st_200ep", clusterer="tied_gmm",
                         **{k: cluster_scores(truth, labels)[k] for k in ("ari", "nmi")},
                         cpu_seconds=time.process_time() - cpu))
        for r in rows:
            r.update(n_obs=a.n_obs, K=K, n_epochs_run=len(res.history))
        print(f"{dataset} seed {seed}: " + ", ".join(f"{r['input']}/{r['clusterer']} {r['ari']:.3f}" for r in rows),
              flush=True)
        pd.concat([pd.read_csv(CSV), pd.DataFrame(rows)], ignore_index=True).to_csv(CSV, index=False)


def main() -> int:
    if "--epochs" in sys.argv:
        epochs()
        return 0
    import torch
    torch.set_num_threads(1)
    from sklearn.mixture import GaussianMixture

    import stlit
    from stlit import m2st
    from stlit.baselines import neighbour_mean
    from stlit.graph import spatial_knn
    from stlit.metrics import cluster_scores
    from stlit.method import check_spatial_graph

    done = pd.read_csv(CSV) if CSV.exists() else pd.DataFrame(columns=["dataset", "seed"])
    have = set(zip(done["dataset"], done["seed"]))
    cfg = m2st.M2STConfig()
    for dataset, a, truth, K, seed in _todo(have):
        cpu = time.process_time()
        res = m2st.fit(a.copy(), K, seed=seed, verbose=False, device="cpu", feature_scale=False)  # the default then
        default_cpu = time.process_time() - cpu
        X = m2st.preprocess_hvg(a, seed=seed)
        A, source = m2st._graph(a, None, "spatial")
        A, _ = check_spatial_graph(A, a.n_obs, method="m2st")
        knn6 = spatial_knn(a.obsm["spatial"], 6, symmetrize=None)
        deg = np.asarray((A != 0).sum(1)).ravel()
        inputs = {"pca": [X], "pca_smooth": [neighbour_mean(X, A)], "pca_smooth_knn6": [neighbour_mean(X, knn6)],
                  "m2st": res.embeddings, "m2st_smooth": m2st.smooth_embeddings(res.embeddings, A)}
        rows = [dict(dataset=dataset, seed=seed, input="m2st (fit default)", clusterer="multiscale",
                     **{k: cluster_scores(truth, res.labels)[k] for k in ("ari", "nmi")}, cpu_seconds=default_cpu)]
        for name, emb in inputs.items():
            for clusterer in ("multiscale", "mclust", "tied_gmm"):
                cpu = time.process_time()
                if clusterer == "tied_gmm":
                    gmm = GaussianMixture(K, covariance_type="tied", n_init=3, random_state=seed)
                    labels = gmm.fit_predict(np.hstack(emb).astype(np.float64))
                else:
                    c = dataclasses.replace(cfg, clustering=clusterer)
                    labels = m2st._cluster_stage(emb, K, c, "label_free", None, seed, False, None)[0]
                s = cluster_scores(truth, labels)
                rows.append(dict(dataset=dataset, seed=seed, input=name, clusterer=clusterer, ari=s["ari"],
                                 nmi=s["nmi"], cpu_seconds=time.process_time() - cpu))
        for r in rows:
            r.update(graph=source, graph_mean_degree=float(deg.mean()), n_obs=a.n_obs, K=K)
        print(f"{dataset} seed {seed}: " + ", ".join(f"{r['input']}/{r['clusterer']} {r['ari']:.3f}" for r in rows),
              flush=True)
        pd.DataFrame(rows).to_csv(CSV, mode="a", header=not CSV.exists(), index=False)
    t = pd.read_csv(CSV)
    pd.set_option("display.width", 200)
    print(t.pivot_table(index=["dataset", "input"], columns="clusterer", values="ari", aggfunc="mean").round(3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
