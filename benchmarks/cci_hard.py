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
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "benchmarks" / "results" / "cci_hard.csv"
sys.path.insert(0, str(ROOT / "benchmarks"))
import _results  # noqa: E402  (CSV append / resume, shared with magnet_code.py)
DATASETS = ("seqfish", "merfish", "starmap")
METHODS = ("MAGNET", "gae", "vgae", "distance", "views", "commot")
EVALUATIONS = ("paper", "leak_free", "distance_matched")
TRAINED = ("MAGNET", "gae", "vgae")  # their rows record the epochs they trained; the others' `epochs` is empty
PAPER_EPOCHS = 120  # MAGNET's paper and code; a trained row with fewer epochs is labelled profile 'quick'
COLUMNS = ["method", "dataset", "evaluation", "seed", "ap", "auroc", "target_snf", "n_pos", "n_pos_split", "epochs",
           "lr_permutations", "seconds", "error", "profile", "cpu_seconds"]
CACHE_DIR = Path("/tmp/stlit_cci_hard_cache")  # prepared inputs between processes (not part of the results)


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


def _score_rows(inputs, adata, split, evaluation, seed, epochs, methods, commot_net, base, gae_epochs=None):
    """One row per method on one split (views removed from the inputs unless evaluation == 'paper'); MAGNET trains
    `epochs`, GAE/VGAE `gae_epochs` (None: `epochs`)."""
    from stlit import magnet
    from stlit.metrics import link_scores
    protocol = "paper" if evaluation == "paper" else "leak_free"
    rows = []
    for method in methods:
        tic, cpu = time.perf_counter(), time.process_time()
        n_ep = epochs if method == "MAGNET" else (gae_epochs or epochs) if method in TRAINED else None
        row = dict(base, method=method, evaluation=evaluation, seed=seed, n_pos=int(split.test_label.sum()), epochs=n_ep,
                   profile="quick" if n_ep is not None and n_ep < PAPER_EPOCHS else "full")
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
                s = magnet.baseline_scores(inputs, split, method, protocol=protocol, seed=seed, epochs=n_ep or 1)
            row.update(ap=s["ap"], auroc=s["auroc"])
        except Exception as err:  # a failure is a row, not a crash
            row["error"] = f"{type(err).__name__}: {err}"
        row["seconds"], row["cpu_seconds"] = time.perf_counter() - tic, time.process_time() - cpu
        rows.append(row)
    return rows


def _run_part(name, c, todo, seed, epochs, evaluations, lr_permutations, commot_kw, out, log, gae_epochs=None):
    "The rows of `todo` ((method, evaluation, target_snf) triples) for one dataset and seed, appended to `out`."
    import dataclasses
    from stlit import magnet
    from stlit.data import lr_pairs
    if any(m == "commot" for m, _, _ in todo) and c["commot"] is None:
        tic, cpu = time.perf_counter(), time.process_time()
        try:
            c["commot"] = magnet.commot_network(c["X"], c["adata"].var_names, c["inputs"].coords, lr_pairs("mouse"),
                                                **(commot_kw or {}))
        except Exception as err:  # recorded as the rows' error
            c["commot"] = err
        c["commot_seconds"], c["commot_cpu_seconds"] = time.perf_counter() - tic, time.process_time() - cpu
        log(f"{name}: COMMOT {c['commot_seconds']:.0f} s ({c['commot_cpu_seconds']:.0f} CPU s)")
    net = c["commot"]
    for t in ("exact", "sparse"):
        mine = [(m, e) for m, e, tt in todo if tt == t]
        if not mine:
            continue
        cfg = c["inputs"].config if t == "exact" else dataclasses.replace(c["inputs"].config, max_dense=0)
        split = magnet.split_edges(magnet._target_of(c["inputs"], "multiview", cfg), 0.3, seed)
        base = dict(dataset=name, target_snf=t, lr_permutations=lr_permutations,
                    n_pos_split=int(split.test_label.sum()))
        for e in evaluations:
            ms = [m for m, ee in mine if ee == e]
            if not ms:
                continue
            split_e = magnet.distance_matched_split(split, c["inputs"].coords, seed=seed) if e == "distance_matched" else split
            rows = []
            if isinstance(net, Exception) and "commot" in ms:
                rows.append(dict(base, method="commot", evaluation=e, seed=seed, profile="full",
                                 error=f"{type(net).__name__}: {net}"))
                ms = [m for m in ms if m != "commot"]
            rows += _score_rows(c["inputs"], c["adata"], split_e, e, seed, epochs, ms, net, base, gae_epochs)
            if "commot" in ms and rows and rows[-1]["method"] == "commot":  # the network, counted once per dataset
                rows[-1]["seconds"] += c.pop("commot_seconds", 0.0)
                rows[-1]["cpu_seconds"] += c.pop("commot_cpu_seconds", 0.0)
            _results.append_rows(out, rows, COLUMNS)
            log(f"{name} seed {seed} {t} {e}: " + ", ".join(f"{r['method']} {r.get('ap', float('nan')):.3f}" for r in rows))


_CACHE = {}


def prepared(name, lr_permutations=100, node2vec_walks_per_node=2, out=CSV, log=print, cache_dir=CACHE_DIR):
    """The dataset, COMMOT's input and MAGNET's prepared inputs (with both targets built): read from `cache_dir` when a
    previous process pickled them (preparing takes minutes per dataset), else built, pickled (unless cache_dir is None)
    and the target change appended to the `_targets.csv` beside `out`."""
    import pickle
    from stlit import magnet
    from stlit.data import lr_pairs
    path = Path(cache_dir) / f"{name}_lrp{lr_permutations}_w{node2vec_walks_per_node}.pkl" if cache_dir else None
    if path is not None and path.exists():
        with open(path, "rb") as f:
            c = pickle.load(f)
        log(f"{name}: prepared inputs read from {path}")
        return c
    tic, cpu = time.perf_counter(), time.process_time()
    adata, X_pos, note = load_dataset(name)
    inputs = magnet.prepare(adata, seed=0, lr_table=lr_pairs("mouse"), lr_permutations=lr_permutations,
                            node2vec_walks_per_node=node2vec_walks_per_node)
    change = target_change(inputs)
    c = dict(adata=adata, X=X_pos, inputs=inputs, commot=None, note=note,
             prepare_seconds=time.perf_counter() - tic, prepare_cpu_seconds=time.process_time() - cpu)
    targets = Path(out).with_name(Path(out).stem + "_targets.csv")
    have = pd.read_csv(targets)["dataset"].tolist() if targets.exists() else []
    if name not in have:
        _results.append_rows(targets, [dict(dataset=name, n_cells=adata.n_obs, **change)])
    log(f"{name}: {adata.n_obs} cells x {adata.n_vars} genes ({note}); prepare + targets "
        f"{c['prepare_seconds']:.0f} s ({c['prepare_cpu_seconds']:.0f} CPU s); target exact vs sparse: {change}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".tmp"), "wb") as f:
            pickle.dump(c, f)
        path.with_suffix(".tmp").rename(path)
    return c


def probe(datasets=DATASETS, epochs=(1, 3), lr_permutations=100, node2vec_walks_per_node=2, log=print):
    "CPU seconds of preparing each dataset and of one MAGNET epoch (from fits of 1 and 3 epochs, paper protocol)."
    from stlit import magnet
    rows = []
    for name in datasets:
        c = prepared(name, lr_permutations, node2vec_walks_per_node, log=log)
        split = magnet.split_edges(magnet._target_of(c["inputs"], "multiview", c["inputs"].config), 0.3, 0)
        cpu = {}
        for e in epochs:
            t = time.process_time()
            magnet.fit(c["adata"], inputs=c["inputs"], split=split, protocol="paper", seed=0, epochs=e, verbose=False,
                       key_added="probe")
            cpu[e] = time.process_time() - t
        per_epoch = (cpu[epochs[1]] - cpu[epochs[0]]) / (epochs[1] - epochs[0])
        rows.append(dict(dataset=name, n_cells=c["adata"].n_obs, prepare_cpu_s=c.get("prepare_cpu_seconds"),
                         fit_overhead_cpu_s=cpu[epochs[0]] - per_epoch * epochs[0], magnet_epoch_cpu_s=per_epoch))
        log(f"probe {rows[-1]}")
    return pd.DataFrame(rows)


def _key(method, dataset, evaluation, seed, target_snf, epochs):
    "A row's identity for resuming: the trained methods' rows also by their epochs."
    return (method, dataset, evaluation, int(seed), target_snf, int(epochs) if method in TRAINED else None)


def read_rows(out) -> pd.DataFrame:
    "The rows in `out` with the current COLUMNS (older files gain the new columns, empty, and are rewritten)."
    return _results.read_rows(out, COLUMNS)


def run(datasets=DATASETS, seeds=(0, 1, 2), epochs=120, methods=METHODS, evaluations=EVALUATIONS,
        lr_permutations=100, node2vec_walks_per_node=2, sparse_seeds=(0,), sparse_methods=("MAGNET", "distance", "views"),
        out=CSV, commot_kw=None, log=print, gae_epochs=None):
    """The grid, seed by seed then dataset by dataset, appending rows to `out` (skipping those already there). MAGNET
    trains `epochs` (an int, or a dict dataset -> epochs), GAE/VGAE `gae_epochs` (None: MAGNET's); a trained row
    with fewer than PAPER_EPOCHS is labelled profile 'quick', every other row 'full'."""
    out = Path(out)
    done = read_rows(out)
    have = {_key(*r) for r in zip(done["method"], done["dataset"], done["evaluation"], done["seed"], done["target_snf"],
                                  done["epochs"].fillna(-1))}
    cache = _CACHE  # prepared datasets, shared by the phases of one process
    for seed in seeds:
        for name in datasets:
            ep = epochs[name] if isinstance(epochs, dict) else epochs
            ep_of = lambda m: ep if m == "MAGNET" else (gae_epochs or ep) if m in TRAINED else -1
            todo = [(m, e, t) for t in ("exact", "sparse") for e in evaluations for m in methods
                    if (t == "exact" or (seed in sparse_seeds and e != "distance_matched"
                                         and m in sparse_methods))
                    and _key(m, name, e, seed, t, ep_of(m)) not in have]
            if not todo:
                continue
            if name not in cache:
                cache[name] = prepared(name, lr_permutations, node2vec_walks_per_node, out, log)
            c = cache[name]
            for group in ([m for m in methods if m != "commot"], ["commot"]):  # COMMOT last: minutes per dataset
                part = [(m, e, t) for m, e, t in todo if m in group]
                if part:
                    _run_part(name, c, part, seed, ep, evaluations, lr_permutations, commot_kw, out, log, gae_epochs)
    return pd.read_csv(out)


if __name__ == "__main__":
    import torch
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--epochs", nargs="+", default=["120"],
                   help="MAGNET epochs: one number, or dataset=epochs pairs (e.g. seqfish=30 merfish=20)")
    p.add_argument("--gae-epochs", type=int, default=None, help="GAE/VGAE epochs (default: MAGNET's)")
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--lr-permutations", type=int, default=100)
    p.add_argument("--out", default=str(CSV))
    p.add_argument("--evaluations", nargs="+", default=list(EVALUATIONS), choices=EVALUATIONS)
    p.add_argument("--sparse-methods", nargs="*", default=["MAGNET", "distance", "views"],
                   help="methods rerun on the sparse SNF target (seed 0, paper and leak_free)")
    p.add_argument("--probe", action="store_true", help="only time preparing and one MAGNET epoch per dataset")
    a = p.parse_args()
    torch.set_num_threads(1)
    log = lambda s: print(time.strftime("%H:%M:%S"), s, flush=True)
    epochs = (int(a.epochs[0]) if len(a.epochs) == 1 and "=" not in a.epochs[0]
              else {k: int(v) for k, v in (x.split("=") for x in a.epochs)})
    if a.probe:
        print(probe(a.datasets, lr_permutations=a.lr_permutations, log=log).to_string())
        raise SystemExit
    # phases, cheapest first, so that a run cut short covers every dataset: the untrained scorers and the GAE/VGAE,
    # then COMMOT, then MAGNET (minutes per fit)
    for phase in ([m for m in a.methods if m not in ("MAGNET", "commot")], ["commot"], ["MAGNET"]):
        if any(m in a.methods for m in phase):
            run(a.datasets, a.seeds, epochs, [m for m in phase if m in a.methods], lr_permutations=a.lr_permutations,
                out=a.out, log=log, gae_epochs=a.gae_epochs, sparse_methods=a.sparse_methods, evaluations=a.evaluations)
