"""MAGNET: the authors'-code configuration (`MagnetConfig.code()`) against the paper's, on seqFISH (1 torch thread).

Usage (from the repository root; every mode appends CSV rows to benchmarks/results/ as each run finishes):
    python benchmarks/magnet_code.py cost 1597 6388     # s/epoch and peak memory, code() and paper, fresh process each
                                                        # (c=code: one configuration)
    python benchmarks/magnet_code.py ap 0 1 2           # AP of paper vs code configs, both protocols, these seeds
                                                        # (ap_paper / ap_code: one configuration)
    python benchmarks/magnet_code.py pieces 0           # code() with one added piece reverted at a time (leak-free)
    python benchmarks/magnet_code.py table3 0 e60       # Table 3 view sets (paper config), both protocols, 60 epochs
    python benchmarks/magnet_code.py fusion 0 1 2       # fusion_projection on/off on a validation split of training edges
    python benchmarks/magnet_code.py gates 0 e120       # the gate's logits and inputs during training (paper config and
                                                        # variants, leak-free): why the spatial gate saturates

`cost` tiles seqFISH side by side (benchmarks/magnet_scale.py: copies shifted in x, 1% expression noise) and uses
reduced preprocessing (20 LR permutations, the covariance GRN, one node2vec walk per node; none of it is timed):
the model, the losses and the attention are the ones of the configuration. Peak memory is VmHWM reset after
`prepare` (training only) and the process peak. `cpu_s_per_epoch` is the fit's CPU time (set-up, the last
evaluation and the outputs included) over the epochs; `steady_cpu_s_per_epoch` the median CPU time from one epoch's
step to the next (forward, losses, backward, optimiser step). The authors' numbers in the CSV are the ones measured with their own
code on this machine (issue 13): 3.8 s/epoch and 2.9 GiB at 1,597 cells, 116 s/epoch and 18.7 GiB at 6,388.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
OUT = Path(os.environ.get("MAGNET_CODE_OUT", HERE / "results"))  # a scratch folder for trial runs
sys.path.insert(0, str(HERE))
import _memory  # noqa: E402
import _results  # noqa: E402

PREP_FAST = dict(lr_permutations=20, grn_method="covariance", node2vec_walks_per_node=1)
PREP = dict(lr_permutations=1000, node2vec_walks_per_node=2)  # the magnet_tables quick profile's preprocessing
PIECES = {  # MagnetConfig.code() fields that this issue added, each reverted alone to the paper's value
    "attention": dict(attention_head_dim=None, attention_block="paper", share_attention=False),
    "encoders": dict(encoders="paper", gate_dropout=0.0),
    "gene_recon": dict(gene_recon_weight=0.0),
    "alignment": dict(alignment="centre"),
    "hard_negatives": dict(hard_negatives="paper", orthogonality_weight=0.0, contrast_batch=4096),
}


def _setup():
    import torch
    torch.set_num_threads(1)


def _append(name, row):
    "Append one row to OUT/name (a new column widens the file: the old rows get NaN there) and print it."
    _results.append_rows(OUT / name, [row])
    print(json.dumps(row, default=str), flush=True)


def _done(name, **key):
    "Whether OUT/name already holds a row with these values (the runs resume where they stopped)."
    return _results.has_row(OUT / name, **key)


def _config(name, **extra):
    from stlit import magnet
    return (magnet.MagnetConfig.code(**extra) if name == "code" else magnet.MagnetConfig(**extra)).validate()


def cost_one(n_cells: int, config: str, epochs: int):
    "One size, one configuration, in this (fresh) process."
    _setup()
    from magnet_scale import tiled_seqfish
    from stlit import magnet
    adata = tiled_seqfish(n_cells)
    cfg = _config(config, **PREP_FAST, epochs=epochs, eval_every=epochs)
    inputs = magnet.prepare(adata, seed=0, config=cfg)
    rss_prepared = _memory.status("VmRSS")
    _memory.reset_peak()
    ticks, step = [], magnet._Run.step  # CPU clock at the start of each epoch's step: the steady per-epoch cost

    def timed(run, model, epoch):
        ticks.append(time.process_time())
        return step(run, model, epoch)
    magnet._Run.step = timed
    cpu = time.process_time()
    res = magnet.fit(adata, inputs=inputs, config=cfg, seed=0, protocol="paper", verbose=False)
    cpu = time.process_time() - cpu
    n_params = sum(p.numel() for p in res.model.parameters())
    _append("magnet_code_cost.csv", dict(
        config=config, n_cells=adata.n_obs, epochs=epochs, s_per_epoch=res.seconds["train"] / epochs,
        cpu_s_per_epoch=cpu / epochs, steady_cpu_s_per_epoch=float(np.median(np.diff(ticks))),
        peak_train_gib=_memory.status("VmHWM"), rss_after_prepare_gib=rss_prepared, n_params=n_params,
        attention=adata.uns["magnet"]["params"]["attention_mode"], torch_threads=1,
        when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))


def _gates(res, adata, views):
    W = res.view_weights
    row = {f"gate_{v}_mean": float(W[:, k].mean()) for k, v in enumerate(views)}
    row.update({f"gate_{v}_sd": float(W[:, k].std()) for k, v in enumerate(views)})
    row["share_cells_max_gate_above_0.99"] = float((W.max(1) > 0.99).mean())
    return row


CACHE = Path("/tmp/magnet_code_cache")  # prepared inputs per configuration (same seed 0: resumed runs skip prepare)


def _seqfish_inputs(config):
    "seqFISH and its prepared inputs; wall and CPU seconds of `prepare` (cached: the seconds of the first run)."
    import pickle
    from stlit import magnet
    from stlit.data import load
    adata = load("seqfish_deeplinc")
    cache = CACHE / f"{config}.pkl"
    if cache.exists():
        with open(cache, "rb") as f:
            return (adata, *pickle.load(f))
    tic, cpu = time.perf_counter(), time.process_time()
    inputs = magnet.prepare(adata, seed=0, config=_config(config, **PREP))
    seconds = dict(prepare_s=time.perf_counter() - tic, prepare_cpu_s=time.process_time() - cpu,
                   **{f"prepare_{k}_s": v for k, v in inputs.seconds.items()})
    CACHE.mkdir(exist_ok=True)
    with open(cache, "wb") as f:
        pickle.dump((inputs, seconds), f)
    return adata, inputs, seconds


def _distance_matched(res, inputs, seed):
    "AP/AUROC of the same trained model on the distance-matched held-out pairs (stlit.magnet.distance_matched_split)."
    import torch
    from stlit import magnet
    from stlit.metrics import link_scores
    try:
        dm = magnet.distance_matched_split(res.split, inputs.coords, seed=seed)
    except Exception as err:  # recorded, not a crash of a resumable run
        return dict(dm_error=f"{type(err).__name__}: {err}")
    s = link_scores(dm.test_label.numpy(), magnet.decode(torch.as_tensor(res.embedding), dm.test_pairs).numpy())
    return dict(dm_ap=s["ap"], dm_auroc=s["auroc"], dm_pairs=len(dm.test_label))


def ap(seeds, configs=("paper", "code"), pieces=None, protocols=("paper", "leak_free")):
    """AP on seqFISH (multiview target, split 0.3, 120 epochs), both protocols, and the distance-matched pairs scored
    with the same trained model; gates per run and per cell type (seed 0). Rows already in the CSV are skipped.
    `pieces`: code() with each piece reverted alone, leak-free, seeds outermost (every piece at seed 0 first)."""
    _setup()
    import pandas as pd
    from stlit import magnet
    out = "magnet_code_pieces.csv" if pieces is not None else "magnet_code_ap.csv"
    for config in configs:
        variants = {config: {}} if pieces is None else {f"code without {p}": kw for p, kw in PIECES.items()}
        todo = [(seed, variant, protocol) for seed in seeds for variant in variants
                for protocol in (("leak_free",) if pieces is not None else protocols)]
        if pieces is None:  # configuration, then seed: the order of the old runs
            todo.sort(key=lambda t: (t[0], protocols.index(t[2])))
        todo = [t for t in todo if not _done(out, config=t[1], seed=t[0], protocol=t[2])]
        if not todo:
            continue
        adata, inputs, prep = _seqfish_inputs(config)
        for seed, variant, protocol in todo:
            kw = variants[variant]
            a = adata.copy()
            tic, cpu = time.perf_counter(), time.process_time()
            res = magnet.fit(a, inputs=inputs, config=_config(config, **PREP, **kw), seed=seed,
                             protocol=protocol, verbose=False)
            row = dict(config=variant, seed=seed, protocol=protocol, ap=res.scores["ap"],
                       auroc=res.scores["auroc"], train_s=time.perf_counter() - tic,
                       train_cpu_s=time.process_time() - cpu, **prep,
                       **_gates(res, a, magnet.VIEWS), **_distance_matched(res, inputs, seed),
                       when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            _append(out, row)
            if pieces is None and seed == 0 and "Cell_class_name" in a.obs:
                labels = a.obs["Cell_class_name"]
                t = pd.DataFrame(res.view_weights, columns=list(magnet.VIEWS)).groupby(labels.values).agg(["mean", "std"])
                t.columns = [f"{v}_{s}" for v, s in t.columns]
                t.insert(0, "cells", labels.value_counts().reindex(t.index).values)
                t.insert(0, "protocol", protocol)
                t.insert(0, "config", config)
                t = t.rename_axis("cell_type").reset_index()
                _results.append_rows(OUT / "magnet_code_gates_by_type.csv", t, t.columns)


TABLE3_SETS = ("spatial", "spatial+lr", "spatial+similarity", "lr+similarity", "spatial+lr+similarity")


def table3(seeds, epochs=120, view_sets=TABLE3_SETS):
    "Table 3: the multiview target, the model given each listed view set (paper config)."
    _setup()
    from stlit import magnet
    adata, inputs, _ = _seqfish_inputs("paper")
    for views in view_sets:
        for seed in seeds:
            for protocol in ("paper", "leak_free"):
                tic = time.perf_counter()
                res = magnet.fit(adata.copy(), inputs=inputs, views=tuple(views.split("+")), seed=seed,
                                 protocol=protocol, epochs=epochs, verbose=False)
                _append("magnet_table3.csv", dict(views=views, seed=seed, protocol=protocol, epochs=epochs,
                                                  ap=res.scores["ap"], auroc=res.scores["auroc"],
                                                  train_s=time.perf_counter() - tic, config="paper",
                                                  when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))


def fusion(seeds, validation_fraction=0.2):
    """fusion_projection on/off chosen without the test edges: the held-out test pairs (split 0.3) are removed from the
    views and the target; a validation split is carved from the remaining training edges; AP on it (leak-free)."""
    _setup()
    import dataclasses
    from stlit import magnet
    adata, inputs, _ = _seqfish_inputs("paper")
    target = magnet.build_target(inputs.views, "multiview", inputs.config)
    for seed in seeds:
        outer = magnet.split_edges(target, 0.3, seed)
        train_graph = magnet.remove_pairs(target, outer.test_pairs)
        views = {v: magnet.remove_pairs(g, outer.test_pairs) for v, g in inputs.views.items()}
        inner = dataclasses.replace(inputs, views=views)
        for projection in (True, False):
            res = magnet.fit(adata.copy(), inputs=inner, target=train_graph, test_fraction=validation_fraction,
                             seed=seed, protocol="leak_free", fusion_projection=projection, verbose=False)
            _append("magnet_fusion_validation.csv", dict(
                fusion_projection=projection, seed=seed, validation_ap=res.scores["ap"],
                validation_auroc=res.scores["auroc"], validation_pairs=len(res.split.test_label),
                test_pairs_removed=len(outer.test_label), when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))

GATE_VARIANTS = {  # paper config, one change each (leak-free); "uniform gate": the gate MLP's logits fixed at 0
    "paper": {}, "paper, gate dropout 0.1 (code)": dict(gate_dropout=0.1),
    "paper, shared cell encoder (code)": dict(share_cell_encoder=True), "paper, uniform gate": "uniform",
    "code": "code"}


class _Zero(__import__("torch").nn.Module):
    "A gate MLP that outputs zero logits: the softmax gives every view 1/3."
    def __init__(self, n_views):
        super().__init__()
        self.n_views = n_views

    def forward(self, x):
        return x.new_zeros(len(x), self.n_views)


def _gate_state(run, model):
    "Gate inputs (the fused views), logits and weights of the current model on every cell, no gradient."
    import torch
    from stlit import magnet
    seen = {}
    hook = model.fusion.register_forward_hook(lambda m, inp, out: seen.update(fused=[z.detach() for z in inp[0]]))
    with torch.no_grad():
        out = run.forward(model)
        logits = model.fusion.gate(torch.cat(seen["fused"], dim=1))
    hook.remove()
    return seen["fused"], logits, out


def gates(seeds, epochs=120, variants=None, every=5):
    """Per variant (leak-free): the gate's mean weights, saturation, logit gap and inputs every `every` epochs; at the
    end the AP of each fused view alone through the trained projection, the gate's first-layer weight per view, and
    the weights per cell type."""
    _setup()
    import pandas as pd
    import torch
    from stlit import magnet
    from stlit.metrics import link_scores
    for variant, kw in GATE_VARIANTS.items():
        if variants and variant not in variants:
            continue
        config = "code" if kw == "code" else "paper"
        adata, inputs, _ = _seqfish_inputs(config)
        for seed in seeds:
            if _done("magnet_gates.csv", variant=variant, seed=seed, epochs=epochs):
                continue
            traj, runs, init, step = [], [], magnet._Run.__init__, magnet._Run.step

            def make(run, *a, **k):
                init(run, *a, **k)
                if kw == "uniform":
                    run.model.fusion.gate = _Zero(len(run.view_edges))
                runs.append(run)

            def timed(run, model, epoch):
                if epoch % every == 0:
                    model.eval()
                    fused, logits, _ = _gate_state(run, model)
                    model.train()
                    w = torch.softmax(logits, 1)
                    top2 = logits.topk(2, dim=1).values
                    traj.append(dict(variant=variant, seed=seed, epoch=epoch,
                                     **{f"gate_{v}_mean": float(w[:, i].mean()) for i, v in enumerate(magnet.VIEWS)},
                                     share_max_gate_above_0_99=float((w.max(1).values > 0.99).float().mean()),
                                     logit_gap_median=float((top2[:, 0] - top2[:, 1]).median()),
                                     **{f"input_norm_{v}": float(z.norm(dim=1).mean()) for v, z in zip(magnet.VIEWS, fused)}))
                return step(run, model, epoch)
            magnet._Run.__init__, magnet._Run.step = make, timed
            try:
                a = adata.copy()
                res = magnet.fit(a, inputs=inputs, config=_config(config, **PREP, **({} if isinstance(kw, str) else kw)),
                                 seed=seed, protocol="leak_free", epochs=epochs, verbose=False)
            finally:
                magnet._Run.__init__, magnet._Run.step = init, step
            run, model = runs[-1], res.model.eval()
            fused, logits, out = _gate_state(run, model)
            alone = {}
            with torch.no_grad():
                for i, v in enumerate(magnet.VIEWS):
                    f = model.fusion
                    z = f.projection(f.scale * fused[i]) if f.projection is not None else fused[i]
                    alone[f"ap_{v}_alone"] = link_scores(run.split.test_label.numpy(),
                                                         magnet.decode(z, run.split.test_pairs).numpy())["ap"]
            w1 = model.fusion.gate[0].weight.detach() if hasattr(model.fusion.gate, "__getitem__") else None
            d = fused[0].shape[1]
            top2 = logits.topk(2, dim=1).values
            row = dict(variant=variant, seed=seed, epochs=epochs, ap=res.scores["ap"], auroc=res.scores["auroc"],
                       **_gates(res, a, magnet.VIEWS), **alone,
                       logit_gap_median=float((top2[:, 0] - top2[:, 1]).median()),
                       **{f"gate_w1_norm_{v}": (float(w1[:, i * d:(i + 1) * d].norm()) if w1 is not None else float("nan"))
                          for i, v in enumerate(magnet.VIEWS)},
                       **{f"input_norm_{v}": float(z.norm(dim=1).mean()) for v, z in zip(magnet.VIEWS, fused)},
                       when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
            for r in traj:
                _append("magnet_gates_trajectory.csv", r)
            _append("magnet_gates.csv", row)
            if "Cell_class_name" in a.obs:
                labels = a.obs["Cell_class_name"].values
                t = pd.DataFrame(res.view_weights, columns=list(magnet.VIEWS))
                t["cell_type"] = labels
                q = t.melt(id_vars="cell_type", var_name="view", value_name="weight").groupby(["cell_type", "view"])["weight"]
                t = q.describe(percentiles=[0.05, 0.5, 0.95]).reset_index()
                t.insert(0, "seed", seed)
                t.insert(0, "variant", variant)
                _results.append_rows(OUT / "magnet_gates_by_type.csv", t, t.columns)


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "cost":
        configs = [a[2:] for a in args if a.startswith("c=")] or ["code", "paper"]  # c=code: one configuration
        for n in map(int, [a for a in args if a.isdigit()] or ["1597", "6388"]):
            for config in configs:
                epochs = 6 if n < 3000 else 3
                proc = subprocess.run([sys.executable, __file__, "cost_one", str(n), config, str(epochs)],
                                      capture_output=True, text=True)
                print(proc.stdout[-2000:] or proc.stderr[-3000:], flush=True)
    elif mode == "cost_one":
        cost_one(int(args[0]), args[1], int(args[2]))
    elif mode in ("ap", "ap_paper", "ap_code"):  # both configurations, or one
        protocols = [a[2:] for a in args if a.startswith("p=")] or ["paper", "leak_free"]  # p=leak_free: one protocol
        ap([int(s) for s in args if s.isdigit()] or [0, 1, 2], configs=("paper", "code") if mode == "ap" else (mode[3:],),
           protocols=protocols)
    elif mode == "pieces":
        ap([int(s) for s in args or ["0"]], configs=("code",), pieces=True)
    elif mode == "table3":  # seeds, and optionally e<epochs> (e.g. e60: fewer epochs for the CPU budget, recorded)
        epochs = [int(a[1:]) for a in args if a.startswith("e")] or [120]
        sets = [a[2:] for a in args if a.startswith("v=")] or TABLE3_SETS  # v=spatial+lr: one set
        table3([int(s) for s in args if s.isdigit()] or [0], epochs[0], sets)
    elif mode == "gates":  # seeds, e<epochs>, and optionally v=<variant> (repeatable)
        epochs = [int(a[1:]) for a in args if a.startswith("e")] or [120]
        gates([int(a) for a in args if a.isdigit()] or [0], epochs[0], [a[2:] for a in args if a.startswith("v=")] or None)
    elif mode == "fusion":
        fusion([int(s) for s in args or ["0", "1", "2"]])
    else:
        raise SystemExit(__doc__)
