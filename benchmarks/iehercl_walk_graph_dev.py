# Development data for IE-HERCL's walk_graph default (synthetic twins only, never scored in the book).
# Output: benchmarks/results/iehercl_walk_graph_dev.txt. Run: OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/iehercl_walk_graph_dev.py

import sys, time, numpy as np, torch, warnings
torch.set_num_threads(1); warnings.filterwarnings("ignore")
import stlit.data as d, stlit.iehercl as ie
from sklearn.metrics import adjusted_rand_score as ari
rows = []
for ds in range(3):
    a = d.toy_visium(n_rows=36, n_cols=36, n_genes=300, n_domains=5, seed=ds, image=False, fold_change=1.6, dispersion=2.0)
    truth = 'truth'
    y = a.obs[truth].astype(str).values
    for mode in ("features", "mixed"):
        t = time.time()
        r = ie.fit(a.copy(), 5, modality="gene", seed=0, verbose=False, device="cpu", walk_graph=mode, n_top_genes=300)
        rows.append((ds, mode, ari(y, r.labels), time.time() - t))
        print(rows[-1], flush=True)
import pandas as pd
df = pd.DataFrame(rows, columns=["toy_seed", "walk_graph", "ari", "s"])
print(df.groupby("walk_graph").ari.describe())
