"""stlit.metrics: checks against scikit-learn/SciPy on random data, invariances, and the DLPFC truth column."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr
from sklearn import metrics as skm

from stlit.core import InputError
from stlit.metrics import cluster_scores, embedding_scores, gene_pearson, link_scores, purity


def test_cluster_scores_match_sklearn_and_are_label_invariant():
    rng = np.random.default_rng(0)
    truth, pred = rng.integers(0, 5, 500), rng.integers(0, 7, 500)
    s = cluster_scores(truth, pred)
    assert s["ari"] == pytest.approx(skm.adjusted_rand_score(truth, pred))
    assert s["nmi"] == pytest.approx(skm.normalized_mutual_info_score(truth, pred))
    assert s["ami"] == pytest.approx(skm.adjusted_mutual_info_score(truth, pred))
    assert s["fmi"] == pytest.approx(skm.fowlkes_mallows_score(truth, pred))
    assert s["homogeneity"] == pytest.approx(skm.homogeneity_score(truth, pred))
    renamed = cluster_scores(np.array(list("abcde"))[truth], (pred + 3) * 10)  # renaming labels changes nothing
    for key in ("ari", "nmi", "ami", "fmi", "homogeneity", "purity"):
        assert renamed[key] == pytest.approx(s[key])
    assert s["n_scored"] == 500 and s["n_dropped"] == 0


def test_purity_brute_force():
    rng = np.random.default_rng(1)
    truth, pred = rng.integers(0, 4, 200), rng.integers(0, 6, 200)
    expected = sum(np.bincount(truth[pred == k]).max() for k in np.unique(pred)) / len(truth)
    assert purity(truth, pred) == pytest.approx(expected)


def test_missing_truth_is_dropped_like_subsetting():
    truth = pd.Categorical(["L1", "L2", None, "L2", "L1", None, "WM"])
    pred = [0, 1, 1, 1, 0, 2, 2]
    s = cluster_scores(truth, pred)
    keep = [0, 1, 3, 4, 6]
    assert (s["n_scored"], s["n_dropped"]) == (5, 2)
    assert s["ari"] == pytest.approx(skm.adjusted_rand_score(np.asarray(truth)[keep].astype(str), np.asarray(pred)[keep]))


def test_dlpfc_truth_has_28_unannotated_spots(data_root):
    import anndata as ad
    path = data_root / "dlpfc_151673" / "dlpfc151673_5000genes.h5ad"
    if not path.exists():
        pytest.skip(f"dataset file missing: {path}")
    obs = ad.read_h5ad(path, backed="r").obs
    truth = obs["layer_guess_reordered"]
    s = cluster_scores(truth, truth.cat.codes.to_numpy())
    assert s["n_dropped"] == 28 and s["n_scored"] == len(obs) - 28
    assert s["ari"] == pytest.approx(1.0) and s["purity"] == pytest.approx(1.0)


def test_embedding_scores_match_sklearn():
    rng = np.random.default_rng(2)
    X, lab = rng.normal(size=(120, 5)), rng.integers(0, 3, 120)
    e = embedding_scores(X, lab)
    assert e["silhouette"] == pytest.approx(skm.silhouette_score(X, lab))
    assert e["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(X, lab))
    with pytest.raises(InputError, match="NaN"):
        embedding_scores(np.full((4, 2), np.nan), [0, 0, 1, 1])


def test_gene_pearson_matches_scipy_sparse_and_constants():
    rng = np.random.default_rng(3)
    pred, obs = rng.poisson(2.0, size=(60, 8)).astype(float), rng.poisson(2.0, size=(60, 8)).astype(float)
    pred[:, 2] = 1.0  # constant prediction
    obs[:, 5] = 0.0  # gene never observed
    g = gene_pearson(sp.csr_matrix(pred), obs, gene_names=[f"g{i}" for i in range(8)])
    assert g.n_constant == 2 and g.constant_genes == ["g2", "g5"]
    for j in (0, 1, 3, 4, 6, 7):
        assert g.per_gene[f"g{j}"] == pytest.approx(pearsonr(pred[:, j], obs[:, j])[0])
    assert g.mean == pytest.approx(g.per_gene.mean()) and g.median == pytest.approx(g.per_gene.median())
    with pytest.raises(InputError, match="NaN"):
        gene_pearson(np.full((3, 2), np.nan), np.ones((3, 2)))
    with pytest.raises(InputError, match="rows"):
        gene_pearson(np.ones((1, 2)), np.ones((1, 2)))


def test_link_scores_match_sklearn_and_ap_differs_from_auprc():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 400)
    score = y + rng.normal(scale=1.0, size=400)
    s = link_scores(y, score, threshold=0.5)
    assert s["ap"] == pytest.approx(skm.average_precision_score(y, score))
    assert s["auroc"] == pytest.approx(skm.roc_auc_score(y, score))
    prec, rec, _ = skm.precision_recall_curve(y, score)
    assert s["auprc"] == pytest.approx(skm.auc(rec, prec)) and s["auprc"] != pytest.approx(s["ap"], abs=1e-6)
    assert s["f1"] == pytest.approx(skm.f1_score(y, score >= 0.5))
    best = link_scores(y, score, threshold="best")
    assert best["f1"] >= s["f1"]
    f1_all = [skm.f1_score(y, score >= t) for t in np.unique(score)]
    assert best["f1"] == pytest.approx(max(f1_all))


@pytest.mark.parametrize("y,score,msg", [([1, 1], [0.1, 0.2], "single class"), ([0, 1, 0], [0.1, 0.2], "must align"),
                                         ([], [], "empty"), ([0, 1], [0.5, np.inf], "NaN/inf")])
def test_link_scores_bad_input(y, score, msg):
    with pytest.raises(InputError, match=msg):
        link_scores(y, score)
