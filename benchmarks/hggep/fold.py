"One leak-free fold at the default profile: train C2-C5 (fixed epochs), test C6 and B4 (another patient)."
import sys, time, resource
import torch; torch.set_num_threads(1)
import numpy as np, pandas as pd
import stlit.data as d, stlit.hggep as hg
from stlit.metrics import gene_pearson
fields = eval(sys.argv[1]) if len(sys.argv) > 1 else {}
tag = sys.argv[2] if len(sys.argv) > 2 else 'default'
secs = [d.load('her2st', section=s) for s in ['C2', 'C3', 'C4', 'C5']]
c = time.process_time(); w = time.perf_counter()
m = hg.fit(secs, seed=0, device='cpu', verbose=False, **fields)
print(tag, m, flush=True)
print(tag, f'fit CPU {time.process_time() - c:.0f} s, wall {time.perf_counter() - w:.0f} s; prepare wall {m.inputs["prepare_seconds"]:.0f} s; '
      f'CPU s/epoch mean {m.history.cpu_seconds.mean():.2f} (n spots {m.inputs["n_train_spots"]})', flush=True)
for s in ['C6', 'B4']:
    a = d.load('her2st', section=s)
    c = time.process_time(); w = time.perf_counter()
    hg.predict(m, a)
    dc, dw = time.process_time() - c, time.perf_counter() - w
    g = gene_pearson(a.obsm['hggep'], hg.expression(a, m.genes, s)[0], gene_names=m.genes)
    top = g.per_gene.sort_values(ascending=False)
    print(tag, f'test {s}: mean PCC {g.mean:.4f} median {g.median:.4f} over {len(g.per_gene)} genes ({g.n_constant} constant); '
          f'predict {a.n_obs} spots CPU {dc:.1f} s ({a.n_obs / dc:.1f} spots/CPU-s), wall {dw:.1f} s; top5 {dict(top.head(5).round(3))}', flush=True)
    g.per_gene.to_csv(f'benchmarks/results/hggep/fold_{tag}_{s}.csv')
m.history.to_csv(f'benchmarks/results/hggep/fold_{tag}_history.csv', index=False)
print(tag, 'peak RSS MB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
