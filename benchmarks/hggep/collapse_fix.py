"""Where does HGGEP's collapse happen, and which change prevents it? (issue 10)

collapse.py found the default profile's predictions constant across spots after 10 epochs (per-gene prediction SD
~5e-5..8e-5 of the observed, latent SD across spots ~1e-4 of its magnitude) on the folds holding out C2 and C3. This
trains the fold holding out C3 (training sections and order as `cross_validate`, seed 0) for EPOCHS epochs under
VARIANT and reports, at initialisation and after training, the across-spot spread (mean over features of the SD across
spots / mean |value|) of every stage of the head (stage heads, ViTs, HAM, LSTM output, latent) and the training fit.

Rule (written down once the first candidates had run, before the last ones did): among the variants that keep every component of the paper (stage
heads + CBAM, ViT, HAM, LSTM), the one with the highest mean training r after EPOCHS = 10 epochs; its 40-epoch run must
not collapse (median per-gene prediction SD > 1e-3 of the observed). The choice uses TRAINING data only (training MSE
and r on the five training sections); the held-out section's r is printed for the record, never used to choose.

Run:  nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 .venv/bin/python \
          benchmarks/hggep/collapse_fix.py 10 C3 VARIANT >> benchmarks/results/hggep/collapse_fix.log 2>&1
VARIANT: default | no_lstm | lr1e-4 | lr3e-4 | zinb0 | clip1 | ... (see VARIANTS). Appends to collapse_fix.csv.
Prepared sections (frozen stage maps) are cached in $HGGEP_PREP_CACHE (default /tmp/hggep_prep_<TEST>.pt).
"""
import os, sys, time
from pathlib import Path

import torch
import numpy as np, pandas as pd

import stlit.hggep as hg
import stlit.img2expr as ie
from _diag import EPOCHS, TEST, SECTIONS, genes, sections

VARIANT = sys.argv[3] if len(sys.argv) > 3 else "default"
VARIANTS = {"default": {}, "no_lstm": dict(lstm=False), "lr1e-4": dict(lr=1e-4), "lr3e-4": dict(lr=3e-4),
            "zinb0": dict(zinb_weight=0.0), "clip1": dict(grad_clip=1.0), "lstm1": dict(lstm_layers=1),
            "no_ham": dict(ham=False), "no_vit": dict(vit=False), "lstm_norm": dict(lstm_norm=True),
            "lstm_norm_clip1": dict(lstm_norm=True, grad_clip=1.0), "init_bias": dict(init_bias=True),
            "init_bias_lstm_norm": dict(init_bias=True, lstm_norm=True), "lstm_lr1e-4": dict(lstm_lr=1e-4),
            "lstm_lr1e-5": dict(lstm_lr=1e-5), "lstm_lr1e-4_init_bias": dict(lstm_lr=1e-4, init_bias=True),
            "lr1e-4_init_bias": dict(lr=1e-4, init_bias=True), "lr3e-4_init_bias": dict(lr=3e-4, init_bias=True)}
# Every variant starts from the CPU profile BEFORE the fix (lr 1e-3, no bias initialisation: the settings whose folds
# collapsed); the fix chosen here (lr 3e-4 + init_bias, variant 'lr3e-4_init_bias') became the default afterwards.
BEFORE = dict(lr=1e-3, init_bias=False)
fields = {**BEFORE, **VARIANTS[VARIANT]}

fold = next(f for f in ie.folds(SECTIONS, "leak_free", seed=0) if f.test == (TEST,))
train = list(fold.fit_pool)
cfg = hg.HGGEPConfig(epochs=EPOCHS, **fields).validate()
cache = Path(os.environ.get("HGGEP_PREP_CACHE", f"/tmp/hggep_prep_{TEST}.pt"))


def spread(x: torch.Tensor) -> float:
    x = x.detach().flatten(1)
    return float(x.std(0).mean() / x.abs().mean().clamp_min(1e-12))


def probe(model, secs) -> dict:
    "Across-spot spread of each stage of the head, averaged over sections (eval mode)."
    found = {}
    hooks = []
    head = model.head
    named = [(f"stage_head{i}", m) for i, m in enumerate(head.stage_heads)] + \
            [(f"vit{i}", m) for i, m in enumerate(head.vits)] + [("ham", head.ham), ("lstm", head.lstm)]
    for name, m in named:
        if m is not None:
            hooks.append(m.register_forward_hook(
                lambda mod, inp, out, name=name: found.setdefault(name, []).append(
                    spread(out[0] if isinstance(out, tuple) else out))))
    with torch.no_grad():
        hg._set_mode(model, False)
        for sec in secs:
            out = model.forward(sec)
            found.setdefault("latent", []).append(spread(out["latent"]))
            found.setdefault("pred", []).append(spread(out["pred"]))
    for h in hooks:
        h.remove()
    return {f"spread_{k}": float(np.mean(v)) for k, v in found.items()}


cpu = time.process_time()
with hg.seeded(0):  # the body of stlit.hggep._fit (seed 0, no monitor)
    generator = torch.Generator().manual_seed(0)
    model = hg._new_model(genes, cfg, 0, torch.device("cpu"))
    hg._set_mode(model, False)
    if cache.exists():
        data = torch.load(cache, weights_only=False)
    else:
        by = sections()
        data = [hg._prepare(by[s], i, genes, cfg, model.encoder, model.device, True, generator)
                for i, s in enumerate(train + [TEST])]
        torch.save(data, cache)
    data, held = data[:-1], data[-1]
    assert [d.name for d in data] == train and held.name == TEST
    generator = torch.Generator().manual_seed(0)
    init = probe(model, data)
    model.history = hg._train(model, data, None, False, generator)
cpu = time.process_time() - cpu
after = probe(model, data)


def fit_stats(secs) -> tuple:
    """Mean over `secs` of the mean per-gene r, and the library's spread (`stlit.hggep._prediction_spread`: median
    over sections of the median over non-constant genes of SD(predicted) / SD(observed) across spots).

    The committed rows of collapse_fix.csv were computed here before that function existed, over ALL genes (observed
    SD floored at 1e-9) with the same medians; no gene is constant on B4 or C2-C6 (observed target SD >= 0.05 for
    every gene, checked 2026-12-04), so the two computations give the same values on these rows."""
    with torch.no_grad():
        hg._set_mode(model, False)
        r = [ie.pcc_per_gene(s.target.numpy(), model.forward(s)["pred"].numpy(), genes).mean for s in secs]
    return float(np.mean(r)), hg._prediction_spread(model, secs)


train_r, train_sd = fit_stats(data)
held_r, held_sd = fit_stats([held])
row = dict(variant=VARIANT, fields=str(fields), fold_test=TEST, epochs=EPOCHS,
           train_mse_first=float(model.history.mse.iloc[0]), train_mse_last=float(model.history.mse.iloc[-1]),
           train_mse_min=float(model.history.mse.min()), train_mean_r=train_r,
           train_pred_sd_over_obs=train_sd, heldout_r_not_used=held_r, heldout_pred_sd_over_obs=held_sd,
           **{f"init_{k}": v for k, v in init.items()}, **after,
           cpu_seconds=round(cpu, 1), load=round(os.getloadavg()[0], 2), date=time.strftime("%Y-%m-%d %H:%M", time.gmtime()))
print({k: (round(v, 5) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)
print(model.history.to_string(), flush=True)
out = Path("benchmarks/results/hggep/collapse_fix.csv")
pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(), index=False)
