"""IE-HERCL sweeps on HER2+ A1 (346 spots, the one labelled section with a real H&E image, pathologist labels):
the ablation (appendix Table 2), the λ grid (Table 1), σ of the heat kernel (Fig. 9) and the backbones (Table 3).

The appendix ran its ablation on Lung9-1 FOV2 and its λ, σ and backbone sweeps on breast cancer: these are the same
experiments on other data, not reproductions of its numbers. EfficientNet-Lite0 features (ImageNet weights) are
computed once and passed as `image_rep` except in the backbone sweep, where each backbone computes its own; backbones
other than EfficientNet-Lite0 have no ImageNet weights offline and run with random weights (the `setting` says so).
Scores are reported, never used to choose a default. Resumable: rows already in the CSV (table, setting, seed), read
again before each row, are skipped, and so are rows another run of this script is computing (benchmarks/_results.py's
`claim`): two runs at once do not duplicate rows; each row is appended as it finishes.
Usage:  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/iehercl_her2_sweeps.py \
            [--seeds 0] [--tables ablation lambda sigma backbone]
Writes benchmarks/results/iehercl_her2_sweeps.csv.
"""
import argparse
import datetime
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import _results  # noqa: E402  (CSV append / resume, shared with magnet_code.py and cci_hard.py)

OUT = HERE / "results" / "iehercl_her2_sweeps.csv"
METRICS = ["ari", "nmi", "ami", "fmi", "hs"]
COLUMNS = ["table", "setting", "seed", *METRICS, "image_weight_mean", "cpu_s", "wall_s", "load_1min", "date"]
BACKBONES = ["efficientnet_lite0", "resnet34", "resnet50", "resnet101", "vgg16", "vgg19", "densenet121",
             "efficientnet_b0"]


def settings(table):
    "(setting label, fit keyword arguments) of one sweep."
    if table == "ablation":
        return [("IE-HERCL", {}), ("w/o AE", dict(use_ae=False)), ("w/o GraphSAGE", dict(use_sage=False)),
                ("w/o attention", dict(attention=False))]
    if table == "lambda":
        return [(f"λ1={l1}, λ2={l2:g}, λ3={l3}", dict(lambda1=l1, lambda2=l2, lambda3=l3))
                for l1 in (1, 10) for l2 in (1e-4, 1e-3) for l3 in (0.1, 1)]
    if table == "sigma":
        return [(f"σ={s}", dict(sigma=s)) for s in (0.01, 0.05, 0.1, 0.5, 1.0)]
    if table == "backbone":
        return [(f"{bb} ({'imagenet' if bb == 'efficientnet_lite0' else 'random'} weights)",
                 dict(image_rep=None, backbone=bb, weights="imagenet" if bb == "efficientnet_lite0" else "random"))
                for bb in BACKBONES]
    raise ValueError(table)


TABLES = {"ablation": "Table 2 ablation", "lambda": "Table 1 λ grid", "sigma": "Fig. 9 σ",
          "backbone": "Table 3 backbone"}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="*", default=[0])
    p.add_argument("--tables", nargs="*", default=list(TABLES))
    args = p.parse_args()
    import torch
    torch.set_num_threads(1)
    import stlit
    from stlit import iehercl
    a = stlit.data.load("her2st", section="A1")
    truth = a.obs["truth"]
    ok = truth.notna().to_numpy()
    K = int(truth[ok].nunique())
    feats, _ = iehercl.image_inputs(a, device="cpu")
    a.obsm["X_cnn"] = feats
    for table in args.tables:
        for label, kw in settings(table):
            for seed in args.seeds:
                with _results.claim(OUT, table=TABLES[table], setting=label, seed=seed) as todo:
                    if todo:
                        run_row(a, truth, ok, K, table, label, {"image_rep": "X_cnn", **kw}, seed)


def run_row(a, truth, ok, K, table, label, kw, seed):
    "Fit one setting and append its row."
    from stlit import iehercl
    from stlit.metrics import cluster_scores
    tic, cpu = time.perf_counter(), time.process_time()
    res = iehercl.fit(a.copy(), K, seed=seed, verbose=False, device="cpu", key_added="ie", **kw)
    s = cluster_scores(truth[ok].astype(str).to_numpy(), res.labels[ok])
    row = dict(table=TABLES[table], setting=label, seed=seed, **{m: s[m] for m in METRICS},
               image_weight_mean=float(res.modality_weights["image"].mean()),
               cpu_s=round(time.process_time() - cpu, 1), wall_s=round(time.perf_counter() - tic, 1),
               load_1min=round(os.getloadavg()[0], 1),
               date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"))
    _results.append_rows(OUT, [row], COLUMNS)
    print(row, flush=True)


if __name__ == "__main__":
    main()
