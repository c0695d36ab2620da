"""Why leak-free C2 scores ~0: HGGEP's position embeddings index the raw array grid, and C2 lies elsewhere on it.

C2's spots sit at array x 9-28, y 13-29 (B4's corner of the grid: x 6-29, y 13-31) while C3-C6 sit at x 2-23, y 5-25
(benchmarks/hggep/position.py). This trains the leak-free fold holding out C2 exactly as folds.py does (same
`cross_validate` call, seed 0) but for EPOCHS epochs (argument; default 10, to fit beside the folds run), then predicts C2
with (a) its own raw positions (what every measured fold did), (b) its positions translated so that its corner matches
the mean corner of the patient-C training sections (a shift computed from spot coordinates only, no expression), and
(c) every spot at one fixed position (the position channel carries nothing). Also: per-gene SD of the predictions vs
of the observed target (collapse check).

Run:  nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python \
          benchmarks/hggep/c2_positions.py 10 >> benchmarks/results/hggep/c2_positions.log 2>&1
Appends to benchmarks/results/hggep/c2_positions.csv.
"""
import dataclasses, os, sys, time
from pathlib import Path

import torch
import numpy as np, pandas as pd

import stlit.hggep as hg
import stlit.img2expr as ie
from _diag import EPOCHS, TEST, SECTIONS, genes, sections

by = sections()
data = [by[s] for s in SECTIONS]
cpu, wall = time.process_time(), time.perf_counter()
store = {}
table = hg.cross_validate(data, protocol="leak_free", test_sections=[TEST], seed=0, device="cpu", verbose=False,
                          store=store, epochs=EPOCHS)
cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
model = next(iter(store["models"].values()))
by = dict(zip(SECTIONS, data))
test = by[TEST]
truth = ie.expression_target(test, genes)
section = hg._prepare(test, 0, genes, model.config, model.encoder, model.device, False, None)
pos = section.pos.clone()
corner = np.mean([hg.spot_positions(by[s]).min(0) for s in model.inputs["train_sections"] if s.startswith("C")], 0)
shifted = (pos - pos.min(0).values + torch.as_tensor(np.round(corner), dtype=pos.dtype)).clamp(0, model.config.n_pos - 1)
fixed = torch.zeros_like(pos) + torch.as_tensor(np.round(corner), dtype=pos.dtype) + 8
rows = []
for name, p in (("raw positions (as measured)", pos), ("translated to the patient-C training corner", shifted),
                ("one fixed position for every spot", fixed)):
    with hg.seeded(model.seed):
        pred = hg._predict_section(model, dataclasses.replace(section, pos=p))
    r = ie.pcc_per_gene(truth, pred, genes)
    rows.append(dict(test=TEST, train_sections=" ".join(model.inputs["train_sections"]), epochs=EPOCHS,
                     positions=name, mean_pcc=r.mean, median_pcc=float(np.nanmedian(r.per_gene)),
                     pred_sd_over_obs_sd=float(np.median(pred.std(0) / np.maximum(truth.to_numpy().std(0), 1e-9))),
                     fold_mean_pcc_cross_validate=float(table.pcc.mean()), fold_cpu_seconds=round(cpu, 1),
                     fold_wall_seconds=round(wall, 1),
                     cpu_s_per_epoch=round(float(model.history.cpu_seconds.mean()), 2),
                     load=round(os.getloadavg()[0], 2), date=time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
    print(rows[-1], flush=True)
out = Path("benchmarks/results/hggep/c2_positions.csv")
pd.DataFrame(rows).to_csv(out, mode="a", header=not out.exists(), index=False)
