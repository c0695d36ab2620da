"""Position-only predictors: how much of a fold's mean r can the spot's grid position alone give?

HGGEP's position embeddings (`stlit.hggep.spot_positions`) index HER2+'s raw array x/y (as the authors' code), not a
per-section frame: sections of one patient that lie at the same place on their array share grid positions, so a model
can carry "expression at grid (x, y)" from the training sections to a test section without looking at the image.
This script measures that channel with no image at all, on the folds of `stlit.img2expr.folds` (seed 0, as
folds.py), for two position frames:

- raw: `stlit.hggep.spot_positions` (what HGGEP's embeddings see);
- per_section: `stlit.img2expr.grid_positions` (ranks from each section's own corner; what HisToGene sees).

Predictors (fixed settings, nothing chosen on any section): ridge (alpha 1) on one-hot x + one-hot y (the additive
form of HGGEP's pos_x(x) + pos_y(y) embeddings), and the mean target of the training spots at the same (x, y) cell
(cells never seen in training get the training mean, so a section off the training grid scores ~0).

Run (seconds):  nice -n 19 env OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/hggep/position.py
Writes benchmarks/results/hggep/position_only.csv (one row per protocol x section x frame x predictor).
"""
import time
import numpy as np, pandas as pd
from sklearn.linear_model import Ridge

import stlit.hggep as hg
import stlit.img2expr as ie
from stlit.core import get_coordinates
from stlit.data import load, hggep_genes

SECTIONS = ["B4", "C2", "C3", "C4", "C5", "C6"]
genes = hggep_genes("her2")
data = {s: load("her2st", section=s) for s in SECTIONS}
target = {s: ie.expression_target(a, genes) for s, a in data.items()}
frames = {"raw": {s: hg.spot_positions(a) for s, a in data.items()},
          "per_section": {s: ie.grid_positions(get_coordinates(a)) for s, a in data.items()}}


def onehot(pos, n=64):
    out = np.zeros((len(pos), 2 * n))
    out[np.arange(len(pos)), pos[:, 0]] = 1
    out[np.arange(len(pos)), n + pos[:, 1]] = 1
    return out


def cell_mean(train_pos, train_y, test_pos):
    sums = {}
    for p, y in zip(map(tuple, train_pos), train_y):
        total, count = sums.get(p, (0.0, 0))
        sums[p] = (total + y, count + 1)
    mean = train_y.mean(0)
    return np.stack([sums[p][0] / sums[p][1] if p in sums else mean for p in map(tuple, test_pos)])


rows = []
start = time.process_time()
for protocol in ("leak_free", "patient"):
    for fold in ie.folds(SECTIONS, protocol, seed=0):
        train = list(fold.fit_pool)
        for frame, pos in frames.items():
            X = np.concatenate([pos[s] for s in train])
            Y = np.concatenate([target[s].to_numpy() for s in train])
            ridge = Ridge(alpha=1.0).fit(onehot(X), Y)
            for t in fold.test:
                seen = np.mean([tuple(p) in set(map(tuple, X)) for p in pos[t]])
                for name, pred in (("onehot_ridge", ridge.predict(onehot(pos[t]))),
                                   ("cell_mean", cell_mean(X, Y, pos[t]))):
                    r = ie.pcc_per_gene(target[t], pred, genes)
                    rows.append(dict(protocol=protocol, section=t, train_sections=" ".join(train), frame=frame,
                                     predictor=name, mean_pcc=r.mean, median_pcc=float(np.nanmedian(r.per_gene)),
                                     n_genes=int(r.per_gene.notna().sum()), share_test_cells_seen=round(seen, 3)))
                    print(rows[-1], flush=True)
out = pd.DataFrame(rows)
out["cpu_seconds_all"] = round(time.process_time() - start, 1)
out.to_csv("benchmarks/results/hggep/position_only.csv", index=False)
print(out.pivot_table(index=["protocol", "section"], columns=["frame", "predictor"], values="mean_pcc").round(3))
