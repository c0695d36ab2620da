"Peak RSS of predict (and of one training epoch) on B4 tiled to n spots; run one n per process."
import sys, time, resource
import torch; torch.set_num_threads(1)
import numpy as np, anndata as ad, pandas as pd
import stlit.data as d, stlit.pp as pp, stlit.hggep as hg
n_target = int(sys.argv[1]); mode = sys.argv[2]; fields = eval(sys.argv[3]) if len(sys.argv) > 3 else {}
b4 = d.load('her2st', section='B4')
genes = d.hggep_genes('her2')
b4 = b4[:, genes].copy()
crops = pp.spot_crops(b4, 112)
reps = int(np.ceil(n_target / b4.n_obs)); side = int(np.ceil(np.sqrt(reps)))
parts = []
for r in range(reps):
    t = b4.copy(); dx, dy = (r % side), (r // side)
    t.obs['x'] = t.obs['x'] + dx * 35; t.obs['y'] = t.obs['y'] + dy * 35
    t.obsm['spatial'] = t.obsm['spatial'] + np.array([dx, dy]) * 35 * 290.0
    t.obs_names = [f'{o}_{r}' for o in t.obs_names]; parts.append(t)
big = ad.concat(parts)[:n_target].copy()
big.obsm['crops'] = np.concatenate([crops] * reps)[:n_target]
big.obs['section'] = 'B4tiled'; del big.uns
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
cfg = dict(crops_key='crops', verbose=False, device='cpu', **fields)
t = time.process_time()
if mode == 'fit':
    m = hg.fit([big], genes=genes, epochs=1, **cfg)
    print(f'n={big.n_obs} fit 1 epoch cpu {time.process_time() - t:.1f} s; epoch cpu {m.history.cpu_seconds.iloc[0]:.1f} s')
else:
    from stlit.method import resolve_config
    cfg.pop('verbose'); cfg.pop('device')
    m = hg._new_model(genes, resolve_config(hg.HGGEPConfig, None, cfg), 0, torch.device('cpu')); m.inputs = {}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.process_time(); w = time.perf_counter()
    hg.predict(m, big)
    print(f'n={big.n_obs} predict cpu {time.process_time() - t:.1f} s ({big.n_obs / (time.process_time() - t):.1f} spots per CPU-s, wall {time.perf_counter() - w:.1f} s)')
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f'n={big.n_obs} mode={mode} peak RSS {peak:.0f} MB (before the measured step {base:.0f} MB)')
