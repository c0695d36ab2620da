"""Peak RSS and CPU time of predict (or of one training epoch) on B4 tiled to n spots; one n per process.

Run from the repository root, one thread:

    for n in 283 1000 4000; do nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        .venv/bin/python benchmarks/hggep/memory.py $n predict; done

B4 (283 spots after loading; the largest HER2+ section with a full-resolution image here) is tiled side by side (its
crops repeated) to n spots. Predict runs the default-profile network, untrained (the cost does not depend on the
weights), on crops already cut (crops_key='crops'). Appends one row to benchmarks/results/hggep/memory.csv: n, mode,
CPU and wall seconds of the measured step, spots per CPU second, peak RSS of the process and its RSS before the step.
"""
import os, platform, sys, time, resource
from pathlib import Path
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
t = time.process_time(); w = time.perf_counter()
if mode == 'fit':
    m = hg.fit([big], genes=genes, epochs=1, **cfg)
    cpu_s, wall_s = time.process_time() - t, time.perf_counter() - w
    print(f'n={big.n_obs} fit 1 epoch cpu {time.process_time() - t:.1f} s; epoch cpu {m.history.cpu_seconds.iloc[0]:.1f} s')
else:
    from stlit.method import resolve_config
    cfg.pop('verbose'); cfg.pop('device')
    m = hg._new_model(genes, resolve_config(hg.HGGEPConfig, None, cfg), 0, torch.device('cpu')); m.inputs = {}
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.process_time(); w = time.perf_counter()
    hg.predict(m, big)
    cpu_s, wall_s = time.process_time() - t, time.perf_counter() - w
    print(f'n={big.n_obs} predict cpu {time.process_time() - t:.1f} s ({big.n_obs / (time.process_time() - t):.1f} spots per CPU-s, wall {time.perf_counter() - w:.1f} s)')
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f'n={big.n_obs} mode={mode} peak RSS {peak:.0f} MB (before the measured step {base:.0f} MB)')
cpu_name = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
row = dict(n_spots=big.n_obs, mode=mode, cpu_seconds=round(cpu_s, 1), wall_seconds=round(wall_s, 1),
           spots_per_cpu_s=round(big.n_obs / cpu_s, 1) if mode != "fit" else None, peak_rss_mb=round(peak),
           rss_before_mb=round(base), config=repr(fields) if fields else "default (CPU profile)",
           machine=f"{platform.node()}: {os.cpu_count()} cores ({cpu_name}), torch {torch.__version__} 1 thread, shared",
           load_at_end=round(os.getloadavg()[0], 2), date=time.strftime("%Y-%m-%d", time.gmtime()))
csv = Path("benchmarks/results/hggep/memory.csv")
pd.DataFrame([row]).to_csv(csv, mode="a", header=not csv.exists(), index=False)
