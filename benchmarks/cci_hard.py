"""The hard cell-cell interaction benchmark (issue 12 part 3): MAGNET, GAE, VGAE, the distance and view-membership
heuristics and COMMOT on seqFISH, MERFISH and STARmap under three evaluations of the same target edges:

- `paper`: RandomLinkSplit negatives, message passing on the full views (they contain the held-out edges);
- `leak_free`: the same split, every held-out pair removed from every input view;
- `distance_matched`: the same held-out positives (those that can be matched), each with a non-target pair from the
  same distance bin (stlit.magnet.distance_matched_split), leak-free.

The target is the exact (dense) SNF of the three views (`target_snf='exact'`); rows with `target_snf='sparse'`
rerun the leak analysis (MAGNET, distance, views; paper and leak_free) on the old kNN-restricted target.
Rows are appended to the CSV as they finish and a rerun skips the rows already there (resume).
experiments/magnet_hard.ipynb imports this file (the quick profile) and reads the CSV (the full grid).

Usage (one thread; hours for the full grid; run under nohup):
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup nice -n 19 python benchmarks/cci_hard.py &
  python benchmarks/cci_hard.py --datasets seqfish --seeds 0 --epochs 30 --out /tmp/cci.csv
"""
import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "benchmarks" / "results" / "cci_hard.csv"
DATASETS = ("seqfish", "merfish", "starmap")
METHODS = ("MAGNET", "gae", "vgae", "distance", "views", "commot")
EVALUATIONS = ("paper", "leak_free", "distance_matched")
COLUMNS = ["method", "dataset", "evaluation", "seed", "ap", "auroc", "target_snf", "n_pos", "n_pos_split", "epochs",
           "lr_permutations", "seconds", "error"]


def load_dataset(name: str, starmap_n_genes: int = 257):
    """(adata for MAGNET, non-negative expression for COMMOT, note): the preprocessing of magnet_reproduce (seqFISH:
    z-scored as shipped) and magnet_datasets (MERFISH, STARmap: normalize_total, log1p, STARmap's LR genes + HVGs to
    257, then z-scored)."""
    import scanpy as sc
    from stlit import graph
    from stlit.data import load, lr_pairs
    if name == "seqfish":
        adata = load("seqfish_deeplinc")
        X = np.asarray(adata.X, dtype=float)
        return adata, X - X.min(0), "z-scored as shipped; COMMOT: each gene shifted to start at 0"
    lr = lr_pairs("mouse")
    raw = load({"merfish": "merfish_moffitt_2000", "starmap": "starmap_visual_cortex"}[name])
    adata = raw.copy()
    adata.X = adata.X.toarray().astype(np.float32) if sp.issparse(adata.X) else np.asarray(adata.X, np.float32)
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    note = "normalize_total + log1p + z-score; COMMOT: the log data"
    if name == "starmap":
        lr_genes = np.unique(graph.lr_pair_index(adata.var_names, lr))
        hvg = sc.pp.highly_variable_genes(adata, flavor="seurat", n_top_genes=starmap_n_genes, inplace=False)
        score = hvg["dispersions_norm"].fillna(-np.inf).to_numpy()
        others = [g for g in np.argsort(-score, kind="stable") if g not in set(lr_genes)]
        keep = np.sort(np.r_[lr_genes, others[:max(0, starmap_n_genes - len(lr_genes))]]).astype(int)
        adata = adata[:, keep].copy()
        note += f"; {len(lr_genes)} LR genes + HVGs = {adata.n_vars} genes"
    adata = adata[np.any(adata.X != 0, axis=1)].copy()
    X = adata.X.copy()
    sc.pp.scale(adata, max_value=10)
    return adata, X, note


def target_change(inputs) -> dict:
    "Edges of the exact and the sparse SNF target and their Jaccard index."
    import dataclasses
    from stlit import magnet
    exact = magnet._target_of(inputs, "multiview", inputs.config)  # kept in inputs.targets: built once
    sparse = magnet._target_of(inputs, "multiview", dataclasses.replace(inputs.config, max_dense=0))
    a, b = sp.triu(exact, 1).tocsr(), sp.triu(sparse, 1).tocsr()
    both = a.multiply(b).nnz
    return {"exact_edges": a.nnz, "sparse_edges": b.nnz, "shared": both, "jaccard": both / (a.nnz + b.nnz - both)}


def _score_rows(inputs, adata, split, evaluation, seed, epochs, methods, commot_net, base):
    "One row per method on one split (views removed from the inputs unless evaluation == 'paper')."
    from stlit import magnet
    from stlit.metrics import link_scores
    protocol = "paper" if evaluation == "paper" else "leak_free"
    rows = []
    for method in methods:
        tic = time.perf_counter()
        row = dict(base, method=method, evaluation=evaluation, seed=seed, n_pos=int(split.test_label.sum()))
        try:
            if method == "MAGNET":
                s = magnet.fit(adata, inputs=inputs, split=split, protocol=protocol, seed=seed, epochs=epochs,
                               verbose=False, max_dense=0 if base["target_snf"] == "sparse" else inputs.config.max_dense,
                               key_added="cci_hard").scores
            elif method == "commot":
                if commot_net is None:
                    continue
                s = link_scores(split.test_label.numpy(), magnet.network_scores(commot_net, split.test_pairs))
            else:
                s = magnet.baseline_scores(inputs, split, method, protocol=protocol, seed=seed, epochs=epochs)
            row.update(ap=s["ap"], auroc=s["auroc"])
        except Exception as err:  # a failure is a row, not a crash
            row["error"] = f"{type(err).__name__}: {err}"
        row["seconds"] = time.perf_counter() - tic
        rows.append(row)
    return rows


def _run_part(name, c, todo, seed, epochs, evaluations, lr_permutations, commot_kw, out, log):
    "The rows of `todo` ((method, evaluation, target_snf) triples) for one dataset and seed, appended to `out`."
    import dataclasses
    from stlit import magnet
    from stlit.data import lr_pairs
    if any(m == "commot" for m, _, _ in todo) and c["commot"] is None:
        tic = time.perf_counter()
        try:
            c["commot"] = magnet.commot_network(c["X"], c["adata"].var_names, c["inputs"].coords, lr_pairs("mouse"),
                                                **(commot_kw or {}))
        except Exception as err:  # recorded as the rows' error
            c["commot"] = err
        c["commot_seconds"] = time.perf_counter() - tic
        log(f"{name}: COMMOT {c['commot_seconds']:.0f} s")
    net = c["commot"]
    for t in ("exact", "sparse"):
        mine = [(m, e) for m, e, tt in todo if tt == t]
        if not mine:
            continue
        cfg = c["inputs"].config if t == "exact" else dataclasses.replace(c["inputs"].config, max_dense=0)
        split = magnet.split_edges(magnet._target_of(c["inputs"], "multiview", cfg), 0.3, seed)
        base = dict(dataset=name, target_snf=t, epochs=epochs, lr_permutations=lr_permutations,
                    n_pos_split=int(split.test_label.sum()))
        for e in evaluations:
            ms = [m for m, ee in mine if ee == e]
            if not ms:
                continue
            split_e = magnet.distance_matched_split(split, c["inputs"].coords, seed=seed) if e == "distance_matched" else split
            rows = []
            if isinstance(net, Exception) and "commot" in ms:
                rows.append(dict(base, method="commot", evaluation=e, seed=seed, error=f"{type(net).__name__}: {net}"))
                ms = [m for m in ms if m != "commot"]
            rows += _score_rows(c["inputs"], c["adata"], split_e, e, seed, epochs, ms, net, base)
            if "commot" in ms:
                rows[-1]["seconds"] += c.get("commot_seconds", 0.0)  # the network, counted once per dataset and seed
            pd.DataFrame(rows).reindex(columns=COLUMNS).to_csv(out, mode="a", header=not out.exists(), index=False)
            log(f"{name} seed {seed} {t} {e}: " + ", ".join(f"{r['method']} {r.get('ap', float('nan')):.3f}" for r in rows))


_CACHE = {}


def run(datasets=DATASETS, seeds=(0, 1, 2), epochs=120, methods=METHODS, evaluations=EVALUATIONS,
        lr_permutations=100, node2vec_walks_per_node=2, sparse_seeds=(0,), sparse_methods=("MAGNET", "distance", "views"),
        out=CSV, commot_kw=None, log=print):
    "The grid, seed by seed then dataset by dataset, appending rows to `out` (skipping those already there)."
    from stlit import magnet
    from stlit.data import lr_pairs
    out = Path(out)
    done = pd.read_csv(out) if out.exists() else pd.DataFrame(columns=COLUMNS)
    have = set(zip(done["method"], done["dataset"], done["evaluation"], done["seed"].astype(int), done["target_snf"]))
    cache = _CACHE  # prepared datasets, shared by the phases of one process
    for seed in seeds:
        for name in datasets:
            todo = [(m, e, t) for t in ("exact", "sparse") for e in evaluations for m in methods
                    if (t == "exact" or (seed in sparse_seeds and e != "distance_matched"
                                         and m in sparse_methods))
                    and (m, name, e, seed, t) not in have]
            if not todo:
                continue
            if name not in cache:
                tic = time.perf_counter()
                adata, X_pos, note = load_dataset(name)
                inputs = magnet.prepare(adata, seed=0, lr_table=lr_pairs("mouse"), lr_permutations=lr_permutations,
                                        node2vec_walks_per_node=node2vec_walks_per_node)
                change = target_change(inputs)
                cache[name] = dict(adata=adata, X=X_pos, inputs=inputs, commot=None)
                targets = Path(out).with_name(Path(out).stem + "_targets.csv")
                pd.DataFrame([dict(dataset=name, n_cells=adata.n_obs, **change)]).to_csv(
                    targets, mode="a", header=not targets.exists(), index=False)
                log(f"{name}: {adata.n_obs} cells x {adata.n_vars} genes ({note}); prepare + targets "
                    f"{time.perf_counter() - tic:.0f} s; target exact vs sparse: {change}")
            c = cache[name]
            for group in ([m for m in methods if m != "commot"], ["commot"]):  # COMMOT last: minutes per dataset
                part = [(m, e, t) for m, e, t in todo if m in group]
                if part:
                    _run_part(name, c, part, seed, epochs, evaluations, lr_permutations, commot_kw, out, log)
    return pd.read_csv(out)


if __name__ == "__main__":
    import torch
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=120)
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--lr-permutations", type=int, default=100)
    p.add_argument("--out", default=str(CSV))
    a = p.parse_args()
    torch.set_num_threads(1)
    log = lambda s: print(time.strftime("%H:%M:%S"), s, flush=True)
    # phases, cheapest first, so that a run cut short covers every dataset: the untrained scorers and the GAE/VGAE,
    # then COMMOT, then MAGNET (minutes per fit)
    for phase in ([m for m in a.methods if m not in ("MAGNET", "commot")], ["commot"], ["MAGNET"]):
        if any(m in a.methods for m in phase):
            run(a.datasets, a.seeds, a.epochs, [m for m in phase if m in a.methods], lr_permutations=a.lr_permutations,
                out=a.out, log=log)
