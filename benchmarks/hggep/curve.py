"""Validation curve: train on C2-C4, monitor mean PCC on C5 every 5 epochs (never the test sections C6/B4).

Run (repository root, one thread): .venv/bin/python benchmarks/hggep/curve.py TAG "FIELDS" MAX_MINUTES, e.g.
    liteC         "{'epochs': 55}"                                                                        (default trunk)
    hamcode       "{'epochs': 40, 'ham_select': 'code'}"
    shufflerandom "{'epochs': 40, 'trunk': 'shufflenet_v2_x0_5', 'trunk_weights': None, 'train_trunk': True, 'gem': True}"
Writes benchmarks/results/hggep/curve_TAG.csv. The loop is `stlit.hggep._train`'s (bias initialisation included)."""
import sys, time, json
import torch; torch.set_num_threads(1)
import numpy as np, pandas as pd
import stlit.data as d, stlit.hggep as hg
from stlit.method import resolve_config
tag = sys.argv[1]; fields = eval(sys.argv[2]); max_min = float(sys.argv[3])
cfg = resolve_config(hg.HGGEPConfig, None, fields, method='hggep')
genes = d.hggep_genes('her2')
secs = [d.load('her2st', section=s) for s in ['C2', 'C3', 'C4', 'C5']]
dev = torch.device('cpu'); g = torch.Generator().manual_seed(0)
torch.manual_seed(0); np.random.seed(0)
t0 = time.perf_counter(); c0 = time.process_time()
m = hg._new_model(genes, cfg, 0, dev); hg._set_mode(m, False)
data = [hg._prepare(a, i, genes, cfg, m.encoder, dev, True, g) for i, a in enumerate(secs)]
train, val = data[:3], data[3]
if cfg.init_bias:
    hg._init_output_bias(m, train)
print(tag, 'prep wall', round(time.perf_counter() - t0, 1), 'cpu', round(time.process_time() - c0, 1), flush=True)
params = [p for mod in hg._modules(m) for p in mod.parameters() if p.requires_grad]
print(tag, 'trainable params', sum(p.numel() for p in params), flush=True)
opt = torch.optim.Adam(params, lr=cfg.lr); sch = torch.optim.lr_scheduler.StepLR(opt, cfg.lr_step, cfg.lr_gamma)
rows = []; t0 = time.perf_counter()
for epoch in range(cfg.epochs):
    c = time.process_time(); hg._set_mode(m, True); tot = 0
    for s in torch.randperm(len(train), generator=g).tolist():
        parts = hg._loss(m, train[s], g); opt.zero_grad(); parts['loss'].backward(); opt.step(); tot += parts['mse']
    sch.step()
    row = dict(epoch=epoch + 1, mse=tot / len(train), cpu=time.process_time() - c)
    if (epoch + 1) % 5 == 0:
        row['val_pcc'] = hg._mean_pcc(m, val)
        print(tag, row, 'wall min', round((time.perf_counter() - t0) / 60, 1), flush=True)
    rows.append(row)
    if time.perf_counter() - t0 > max_min * 60:
        break
pd.DataFrame(rows).to_csv(f'benchmarks/results/hggep/curve_{tag}.csv', index=False)
