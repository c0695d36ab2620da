import numpy as np, stlit.data as d, stlit.pp as pp, stlit.hggep as hg
from sklearn.linear_model import RidgeCV
from sklearn.preprocessing import StandardScaler
from stlit.metrics import gene_pearson
genes = d.hggep_genes('her2')
S = {s: d.load('her2st', section=s) for s in ['B4', 'C2', 'C3', 'C4', 'C5', 'C6']}
F, Y = {}, {}
for s, a in S.items():
    c = pp.spot_crops(a, 112).reshape(a.n_obs, -1, 3).astype(float)
    F[s] = np.hstack([c.mean(1), c.std(1)]); Y[s] = hg.expression(a, genes, s)[0]
for test, train in [('C6', ['C2', 'C3', 'C4', 'C5']), ('B4', ['C2', 'C3', 'C4', 'C5']), ('B4', ['C2', 'C3', 'C4', 'C5', 'C6'])]:
    X = np.vstack([F[s] for s in train]); y = np.vstack([Y[s] for s in train])
    sc = StandardScaler().fit(X); r = RidgeCV(alphas=np.logspace(-2, 4, 13)).fit(sc.transform(X), y)
    g = gene_pearson(r.predict(sc.transform(F[test])), Y[test])
    print(f'colour ridge test {test} train {train}: mean {g.mean:.4f} median {g.median:.4f} constant {g.n_constant}')
