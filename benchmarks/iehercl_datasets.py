"""IE-HERCL on every labelled section here, beside its gene-only and image-only variants and the baselines
(ARI, NMI, AMI, FMI, HS; CPU and wall seconds; peak RSS).

Datasets (in the order run: the must-show numbers first): DLPFC 151673 (layers, lowres image), HER2+ A1 (pathologist
labels, 2,000-px app PNG), Visium breast cancer A1 (K = 20; gene input = the m2ST authors' 200 PCA features, lowres
image), HER2+ B4 and C2-C6 (full-resolution H&E; truth = the her2st *expression-cluster annotation*,
`obs['expr_cluster']`: clusters of expression, not a pathologist's reading). K = the number of labelled domains.
Methods: IE-HERCL (default fit, CNN features included), its gene-only (`modality='gene'`) and image-only
(`modality='image'`) variants, `stlit.baselines.run` for pca_leiden, pca_mclust and smoothed_pca_gmm, and m2ST
(`stlit.m2st.fit` defaults). The peers (GraphST, STAGATE, BANKSY, SpaGCN) are NOT rerun here: the chapter reads them
from benchmarks/results/domains.csv where the same dataset was run there (`PEER_DATASETS`).
Resumable: rows already in the CSV (dataset, method, seed), read again before each row, are skipped, and so are rows
another run of this script is computing (benchmarks/_results.py's `claim`); every row is appended at once.
Usage:  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/iehercl_datasets.py \
            [--seeds 0] [--methods ...] [--datasets ...]
        python benchmarks/iehercl_datasets.py --facts   # the images and crop sizes only (no fit), seconds
Writes benchmarks/results/iehercl_datasets.csv (and iehercl_images.csv with --facts).
"""
import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _results  # noqa: E402  (CSV append / resume, shared with magnet_code.py and cci_hard.py)
from _memory import reset_peak, status  # noqa: E402

OUT = HERE / "results" / "iehercl_datasets.csv"
DATASETS = ["dlpfc_151673", "her2st_a1", "breast_cancer", "her2st_b4", "her2st_c2", "her2st_c3", "her2st_c4",
            "her2st_c5", "her2st_c6"]
METHODS = ["iehercl", "iehercl_gene", "pca_leiden", "pca_mclust", "smoothed_pca_gmm", "iehercl_image", "m2st"]
PEER_DATASETS = {"dlpfc_151673": "dlpfc_151673", "her2st_a1": "her2st_a1", "breast_cancer": "bc_a1"}  # -> domains.csv
PEERS = ["banksy", "spagcn", "graphst", "stagate"]
SCORES = ["ari", "nmi", "ami", "fmi", "hs"]
NO_INFO = {"modality": "", "image_weight_mean": np.nan, "image_weight_sd": np.nan, "crop_image_px": np.nan}
COLUMNS = ["dataset", "truth", "n_spots", "n_labelled", "K", "method", "seed", *SCORES, "cpu_s", "wall_s",
           "peak_rss_gib", "load_1min_start", "load_1min_end", "error", *NO_INFO, "machine", "date"]


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
    from stlit import baselines, iehercl, m2st
    if method.startswith("iehercl"):
        modality = {"iehercl_gene": "gene", "iehercl_image": "image"}.get(method, "auto")
        res = iehercl.fit(a.copy(), K, use_rep=None if modality == "image" else use_rep, modality=modality,
                          seed=seed, verbose=False, device="cpu", key_added="ie")
        w = res.modality_weights["image"].to_numpy()
        return res.labels, {"modality": res.inputs["modality"], "image_weight_mean": float(w.mean()),
                            "image_weight_sd": float(w.std()), "crop_image_px": res.inputs.get("crop_image_px", np.nan)}
    if method == "m2st":
        graph = "adjacency" if "adjacency" in a.obsp else None  # the m2ST authors' graph where it came with the data
        return m2st.fit(a.copy(), K, use_rep=use_rep, graph_key=graph, seed=seed, verbose=False,
                        device="cpu").labels, dict(NO_INFO)
    b = a.copy()
    if use_rep is not None:  # features in X (the baselines' feature path)
        import anndata as ad
        b = ad.AnnData(X=a.obsm[use_rep], obs=a.obs[[]].copy(), obsm={"spatial": a.obsm["spatial"]})
    baselines.run(method, b, K, seed=seed, key_added="bl")
    return b.obs["bl"].astype(str).to_numpy(), dict(NO_INFO)


def machine() -> str:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else "?"
    return f"{os.cpu_count()} cores, {cpu}"


def image_facts(datasets):
    "What image each dataset has and how many of its pixels the appendix's crop covers (no fit)."
    from stlit import iehercl, pp
    rows = []
    for name in datasets:
        a, truth, _, kind = load(name)
        im = pp.spot_image(a)
        side = iehercl.crop_side(a)
        lib = next(iter(a.uns["spatial"].values()))
        rows.append(dict(dataset=name, truth=kind, n_spots=a.n_obs, n_labelled=int(truth.notna().sum()),
                         K=int(truth.nunique()), image=im.name, image_px=f"{im.width}x{im.height}",
                         image_per_fullres_px=round(im.scale, 4),
                         spot_diameter_fullres_px=round(lib["scalefactors"]["spot_diameter_fullres"], 1),
                         crop_fullres_px=round(side, 1), crop_image_px=round(side * im.scale, 1)))
        im.close()
    out = OUT.with_name("iehercl_images.csv")
    pd.DataFrame(rows).to_csv(out, index=False)
    print(pd.DataFrame(rows).to_string())


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--facts", action="store_true", help="only write iehercl_images.csv (the images and crop sizes)")
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--methods", nargs="*", default=METHODS)
    p.add_argument("--datasets", nargs="*", default=DATASETS)
    args = p.parse_args()
    if args.facts:
        return image_facts(args.datasets)
    import torch
    torch.set_num_threads(1)
    for seed in args.seeds:
        for dataset in args.datasets:
            todo = [m for m in args.methods if not _results.has_row(OUT, dataset=dataset, method=m, seed=seed)]
            if not todo:  # nothing left: the dataset is not loaded
                continue
            a, truth, use_rep, kind = load(dataset)
            for method in todo:
                with _results.claim(OUT, dataset=dataset, method=method, seed=seed) as mine:
                    if mine:
                        run_row(method, a, truth, use_rep, kind, dataset, seed)


def run_row(method, a, truth, use_rep, kind, dataset, seed):
    "Run one method on one dataset and append its row (an error is recorded in the row)."
    from stlit.metrics import cluster_scores
    ok = truth.notna().to_numpy()
    K = int(truth[ok].nunique())
    reset_peak()
    load0 = os.getloadavg()[0]
    tic, cpu = time.perf_counter(), time.process_time()
    try:
        labels, info = run_one(method, a, K, use_rep, seed)
        s = cluster_scores(truth[ok].astype(str).to_numpy(), np.asarray(labels)[ok])
        err = ""
    except Exception as e:  # noqa: BLE001 -- recorded in the table, the run goes on
        s, err = {}, f"{type(e).__name__}: {str(e)[:200]}".replace("\n", " ")
        info = dict(NO_INFO)
    row = dict(dataset=dataset, truth=kind, n_spots=a.n_obs, n_labelled=int(ok.sum()), K=K, method=method,
               seed=seed, **{m: s.get(m, np.nan) for m in SCORES},
               cpu_s=round(time.process_time() - cpu, 1), wall_s=round(time.perf_counter() - tic, 1),
               peak_rss_gib=round(status("VmHWM"), 3), load_1min_start=round(load0, 1),
               load_1min_end=round(os.getloadavg()[0], 1), error=err, **info, machine=machine(),
               date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"))
    _results.append_rows(OUT, [row], COLUMNS)
    print(row, flush=True)


if __name__ == "__main__":
    main()
