"""Are HGGEP's predictions collapsed? Per-gene SD of the predictions against the observed SD, on every section.

c2_positions.py found HGGEP's predictions for leak-free C2 nearly constant across spots (median per-gene prediction SD
~5e-5 of the observed SD). This trains the same fold (held out: TEST, default C2; training sections and order as
`cross_validate` / folds.py: `img2expr.folds` seed 0, fit_pool; the body of `stlit.hggep._fit` with seed 0) for EPOCHS
epochs (default 10), keeps every prepared section, and reports per section (the 5 training sections and the held-out
one): mean r, median ratio of per-gene prediction SD to observed SD, the SD across spots of the latent (before the gene
head's LayerNorm) relative to its mean magnitude, and the stage-map statistics of the frozen trunk (mean, SD across
spots) that feed the head.

Run:  nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python \
          benchmarks/hggep/collapse.py 10 C2 >> benchmarks/results/hggep/collapse.log 2>&1
Appends to benchmarks/results/hggep/collapse.csv.
"""
import os, sys, time
from pathlib import Path

import torch
import numpy as np, pandas as pd

import stlit.hggep as hg
import stlit.img2expr as ie
from _diag import EPOCHS, TEST, SECTIONS, genes, sections

by = sections()
fold = next(f for f in ie.folds(SECTIONS, "leak_free", seed=0) if f.test == (TEST,))
train = list(fold.fit_pool)
cfg = hg.HGGEPConfig(epochs=EPOCHS).validate()
cpu = time.process_time()
with hg.seeded(0):  # the body of stlit.hggep._fit (seed 0, no monitor), keeping the prepared sections
    generator = torch.Generator().manual_seed(0)
    model = hg._new_model(genes, cfg, 0, torch.device("cpu"))
    hg._set_mode(model, False)
    data = [hg._prepare(by[s], i, genes, cfg, model.encoder, model.device, True, generator) for i, s in enumerate(train)]
    model.history = hg._train(model, data, None, False, generator)
    data.append(hg._prepare(by[TEST], 0, genes, cfg, model.encoder, model.device, True, None))
cpu = time.process_time() - cpu
rows = []
with torch.no_grad():
    for sec in data:
        hg._set_mode(model, False)
        out = model.forward(sec)
        pred, latent = out["pred"].numpy(), out["latent"].numpy()
        obs = sec.target.numpy()
        r = ie.pcc_per_gene(obs, pred, genes)
        stage = [s.flatten(1).numpy() for s in sec.stages]
        rows.append(dict(fold_test=TEST, section=sec.name, role="held out" if sec.name == TEST else "training",
                         epochs=EPOCHS, mean_pcc=r.mean,
                         pred_sd_over_obs_sd=hg._prediction_spread(model, [sec]),  # committed rows: all genes, none constant here
                         pred_mean_minus_obs_mean=float(np.mean(pred.mean(0) - obs.mean(0))),
                         latent_sd_over_abs_mean=float(latent.std(0).mean() / np.abs(latent).mean()),
                         **{f"S{k + 3}_mean": float(s.mean()) for k, s in enumerate(stage)},
                         **{f"S{k + 3}_sd_across_spots": float(s.std(0).mean()) for k, s in enumerate(stage)},
                         train_sections=" ".join(train), fold_cpu_seconds=round(cpu, 1),
                         final_train_mse=float(model.history.mse.iloc[-1]), load=round(os.getloadavg()[0], 2),
                         date=time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
        print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)
out = Path("benchmarks/results/hggep/collapse.csv")
pd.DataFrame(rows).to_csv(out, mode="a", header=not out.exists(), index=False)
