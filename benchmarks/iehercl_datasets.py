"""IE-HERCL on every labelled section here, beside its gene-only variant and the baselines (ARI, NMI, AMI, FMI, HS).

Datasets: HER2+ A1 (pathologist labels, 2,000-px app PNG), B4 and C2-C6 (full-resolution H&E; truth = the her2st
*expression-cluster annotation*, `obs['expr_cluster']`: clusters of expression, not a pathologist's reading),
DLPFC 151673 (layers, lowres image), Visium breast cancer A1 (K = 20; gene input = the m2ST authors' 200 PCA features,
lowres image). K = the number of labelled domains. Methods: IE-HERCL (default fit, CNN features included), its
gene-only variant (`modality='gene'`), `stlit.baselines.run` for pca_leiden, pca_mclust, smoothed_pca_gmm and the peers
(banksy, spagcn, graphst and stagate at fewer epochs than the packages' own: labelled in `method`).
One process, resumable: rows already in the CSV (dataset, method, seed) are skipped, every row is appended at once.
Usage:  python benchmarks/iehercl_datasets.py [--seeds 0] [--methods ...] [--datasets ...]
Writes benchmarks/results/iehercl_datasets.csv.
"""
import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "iehercl_datasets.csv"
DATASETS = ["her2st_a1", "her2st_b4", "her2st_c2", "her2st_c3", "her2st_c4", "her2st_c5", "her2st_c6", "dlpfc_151673",
            "breast_cancer"]
METHODS = ["iehercl", "iehercl_gene", "pca_leiden", "pca_mclust", "smoothed_pca_gmm", "banksy", "spagcn",
           "graphst_200ep", "stagate_200ep"]
PEER_KW = {"graphst_200ep": ("graphst", {"epochs": 200}), "stagate_200ep": ("stagate", {"epochs": 200})}


def load(name):
    "(adata, truth column, use_rep, truth kind)"
    import stlit
    if name.startswith("her2st_"):
        section = name.split("_")[1].upper()
        a = stlit.data.load("her2st", section=section)
        if section == "A1":
            return a, a.obs["truth"], None, "pathologist labels"
        return a, a.obs["expr_cluster"], None, "her2st expression-cluster annotation"
    if name == "dlpfc_151673":
        a = stlit.data.load("dlpfc_151673")
        return a, a.obs["truth"], None, "layer annotation"
    a = stlit.data.load("m2st_bc_a1")
    img = stlit.data.load("visium_bc_a1")
    assert np.allclose(a.obsm["spatial"], img.obsm["spatial"]), "the two breast-cancer tables must list the same spots"
    a.obs_names = img.obs_names
    a.obsm["X_authors_pca"] = np.asarray(a.X, dtype=np.float32)
    a.uns["spatial"] = img.uns["spatial"]
    return a, a.obs["truth"], "X_authors_pca", "pathologist annotation (20 domains)"


def run_one(method, a, K, use_rep, seed):
    "labels, info"
    from stlit import baselines, iehercl
    if method.startswith("iehercl"):
        modality = "gene" if method == "iehercl_gene" else "auto"
        res = iehercl.fit(a, K, use_rep=use_rep, modality=modality, seed=seed, verbose=False, device="cpu",
                          key_added="ie")
        w = res.modality_weights["image"].to_numpy()
        return res.labels, {"modality": res.inputs["modality"], "image_weight_mean": float(w.mean()),
                            "crop_image_px": res.inputs.get("crop_image_px", np.nan)}
    name, kw = PEER_KW.get(method, (method, {}))
    b = a.copy()
    if use_rep is not None:  # features in X (the baselines' feature path)
        import anndata as ad
        b = ad.AnnData(X=a.obsm[use_rep], obs=a.obs[[]].copy(), obsm={"spatial": a.obsm["spatial"]})
    baselines.run(name, b, K, seed=seed, key_added="bl", **kw)
    return b.obs["bl"].astype(str).to_numpy(), {"modality": "", "image_weight_mean": np.nan, "crop_image_px": np.nan}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    args = p.parse_args()
    import torch
    torch.set_num_threads(1)
    from stlit.metrics import cluster_scores
    done = set()
    if OUT.exists():
        old = pd.read_csv(OUT)
        done = set(zip(old.dataset, old.method, old.seed))
    for seed in args.seeds:
        for dataset in args.datasets:
            todo = [m for m in args.methods if (dataset, m, seed) not in done]
            if not todo:
                continue
            a, truth, use_rep, kind = load(dataset)
            ok = truth.notna().to_numpy()
            K = int(truth[ok].nunique())
            for method in todo:
                tic, cpu = time.perf_counter(), time.process_time()
                try:
                    labels, info = run_one(method, a, K, use_rep, seed)
                    s = cluster_scores(truth[ok].astype(str).to_numpy(), np.asarray(labels)[ok])
                    err = ""
                except Exception as e:  # noqa: BLE001 -- recorded in the table, the run goes on
                    s, err = {}, f"{type(e).__name__}: {str(e)[:200]}".replace("\n", " ")
                    info = {"modality": "", "image_weight_mean": np.nan, "crop_image_px": np.nan}
                row = dict(dataset=dataset, truth=kind, n_spots=a.n_obs, n_labelled=int(ok.sum()), K=K, method=method,
                           seed=seed, **{m: s.get(m, np.nan) for m in ("ari", "nmi", "ami", "fmi", "hs")},
                           cpu_s=round(time.process_time() - cpu, 1), wall_s=round(time.perf_counter() - tic, 1),
                           load_1min=round(os.getloadavg()[0], 1), error=err, **info)
                pd.DataFrame([row]).to_csv(OUT, mode="a", header=not OUT.exists(), index=False)
                print(row, flush=True)


if __name__ == "__main__":
    main()
