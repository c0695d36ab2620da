"""IE-HERCL key numbers (issue 11): HER2+ A1 and DLPFC 151673, IE-HERCL and its gene-only / image-only variants
(CNN features computed once, passed as image_rep) and the baselines PCA -> Leiden, PCA -> mclust, smoothed PCA + GMM.
Usage: python benchmarks/iehercl_key_numbers.py her2st_a1 dlpfc_151673  -> appends rows to /tmp/ie/key_numbers.jsonl
(the committed benchmarks/results/iehercl_key_numbers.csv was converted from that file; one seed, defaults).
"""
import time, sys, json
import torch; torch.set_num_threads(1)
import numpy as np, pandas as pd, scanpy as sc
import stlit
from stlit import iehercl, pp
from stlit.cluster import leiden, mclust
from stlit.graph import knn_search
from stlit.metrics import cluster_scores
from sklearn.mixture import GaussianMixture
import os; os.makedirs('/tmp/ie', exist_ok=True)
out = open('/tmp/ie/key_numbers.jsonl', 'a')
def emit(ds, method, labels, truth, sec):
    s = cluster_scores(truth, labels)
    row = dict(dataset=ds, method=method, seconds=round(sec, 1), **{m: round(s[m], 4) for m in ['ari','nmi','ami','fmi','hs']})
    out.write(json.dumps(row) + '\n'); out.flush(); print(row, flush=True)
def baselines(ds, a, K):
    b = a.copy(); pp.preprocess(b, n_top_genes=3000, n_comps=50, seed=0); X50 = b.obsm['X_pca']
    t = time.perf_counter(); g = sc.pp.neighbors(sc.AnnData(X50), use_rep='X', random_state=0, copy=True).obsp['connectivities']
    emit(ds, 'PCA -> Leiden', leiden(g, n_clusters=K, seed=0), a.obs['truth'], time.perf_counter()-t)
    t = time.perf_counter(); emit(ds, 'PCA -> mclust', mclust(X50, K), a.obs['truth'], time.perf_counter()-t)
    b = a.copy(); pp.preprocess(b, n_top_genes=3000, n_comps=30, seed=0); X30 = b.obsm['X_pca']
    idx, _ = knn_search(a.obsm['spatial'], 6); Xs = (X30 + X30[idx].sum(1)) / 7
    t = time.perf_counter(); emit(ds, 'smoothed PCA + GMM', GaussianMixture(K, covariance_type='tied', random_state=0, n_init=3).fit_predict(Xs), a.obs['truth'], time.perf_counter()-t)
import os; os.makedirs('/tmp/ie', exist_ok=True)
for ds in [d for d in sys.argv[1:] if not d.startswith('--')]:
    a = stlit.data.load('her2st', section='A1') if ds == 'her2st_a1' else stlit.data.load(ds)
    K = a.obs['truth'].nunique()
    t = time.perf_counter(); feats, info = iehercl.image_inputs(a); ti = time.perf_counter() - t
    print(info, flush=True)
    a.obsm['X_cnn'] = feats
    for variant, mod in [('IE-HERCL', 'both'), ('IE-HERCL (gene-only)', 'gene'), ('IE-HERCL (image-only)', 'image')]:
        if ds == 'dlpfc_151673' and mod == 'both' and '--skip-dlpfc-full' in sys.argv:
            continue  # measured by the timing run (default fit, same seed)
        t = time.perf_counter()
        r = iehercl.fit(a, K, image_rep='X_cnn', modality=mod, seed=0, verbose=False, device='cpu')
        emit(ds, variant, r.labels, a.obs['truth'], time.perf_counter() - t)
        if mod == 'both':
            w = pd.DataFrame({'truth': a.obs['truth'].astype(str).values, 'image_weight': r.modality_weights['image'].values})
            print(w.groupby('truth').image_weight.describe().round(3).to_string(), flush=True)
    baselines(ds, a, K)
