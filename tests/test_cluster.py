"""stlit.cluster on real embeddings: the Python mclust backend must reproduce R's Mclust (GraphST recipe), plus
refinement, Leiden and bad-input checks.

R comparisons are skipped, with the reason, when rpy2/R/mclust cannot be loaded; the Python-only checks always run
when the data are present.
"""
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from stlit.cluster import kmeans, leiden, mclust, r_available, r_sample, refine_labels
from stlit.core import InputError
from stlit.metrics import cluster_scores

needs_r = pytest.mark.skipif(not r_available(), reason="R backend unavailable: rpy2, R or R's mclust cannot be "
                             "loaded (pip install rpy2==3.5.17; apt install r-base-core r-cran-mclust)")


def _need(path):
    "`path`, or skip the test when that dataset file is absent."
    if not path.exists():
        pytest.skip(f"dataset file missing: {path}")
    return path


@pytest.fixture(scope="module")
def starmap(data_root):
    import scipy.io as sio
    folder = _need(data_root / "m2st_preprocessed" / "starmap_1207")
    mat = sio.loadmat(folder / "STARmap_embded.mat")
    return mat["view2"].astype(float), np.load(folder / "labels.npy").ravel()


@pytest.fixture(scope="module")
def dlpfc(data_root):
    import scanpy as sc
    ad = sc.read_h5ad(_need(data_root / "dlpfc_151673" / "dlpfc151673_5000genes.h5ad"))
    truth = ad.obs["layer_guess_reordered"].astype(object).to_numpy()
    sc.pp.normalize_total(ad, target_sum=1e4)
    sc.pp.log1p(ad)
    sc.pp.pca(ad, n_comps=20, svd_solver="arpack", random_state=0)
    return np.asarray(ad.obsm["X_pca"], float), truth, np.asarray(ad.obsm["spatial"], float)


@pytest.fixture(scope="module")
def dlpfc_python_labels(dlpfc):
    return mclust(dlpfc[0], 7, seed=2020)


@needs_r
def test_python_backend_reproduces_r_on_starmap(starmap):
    "m2ST's STARmap view2 (1,207 × 64): n < 2,000, so hc sees every cell."
    X, _ = starmap
    py, r = mclust(X, 7, backend="python"), mclust(X, 7, backend="r")
    assert adjusted_rand_score(r, py) >= 0.99, f"backends disagree: ARI {adjusted_rand_score(r, py):.3f}"


@needs_r
def test_python_backend_reproduces_r_on_dlpfc_subset_path(dlpfc, dlpfc_python_labels):
    "DLPFC 151673 PCA-20 (3,639 spots): n > 2,000, so both hc's run on R's random subset of 2,000."
    r = mclust(dlpfc[0], 7, backend="r", seed=2020)
    assert adjusted_rand_score(r, dlpfc_python_labels) >= 0.99


@needs_r
def test_agreement_check_can_fail(starmap):
    "The agreement threshold above is discriminating: scikit-learn's k-means-started tied mixture misses it."
    X, _ = starmap
    r = mclust(X, 7, backend="r")
    alt = mclust(X, 7, init="kmeans", n_init=2, seed=0)
    assert adjusted_rand_score(r, alt) < 0.9


@needs_r
def test_r_sample_matches_r_for_other_seeds():
    import rpy2.robjects as ro
    for seed, n, size in [(1, 5000, 2000), (42, 2001, 2000), (2**31 - 1, 10**6, 300)]:
        r = np.asarray(ro.r(f"set.seed({seed}); sample(seq.int({n}), {size})")).astype(int) - 1
        assert np.array_equal(r, r_sample(n, size, seed))


def test_python_mclust_on_dlpfc_matches_r_reference_ari(dlpfc, dlpfc_python_labels):
    "R's Mclust on this embedding scores ARI 0.505 against the layers (measured with R 4.2 / mclust 6.0.0)."
    _, truth, _ = dlpfc
    s = cluster_scores(truth, dlpfc_python_labels)
    assert s["n_dropped"] == 28
    assert s["ari"] == pytest.approx(0.505, abs=0.03)
    assert np.array_equal(np.unique(dlpfc_python_labels), np.arange(7))


def test_mclust_is_deterministic_and_seed_matters(starmap):
    X = starmap[0][:, :16]
    Xbig = np.vstack([X, X + 1e-3 * np.random.default_rng(0).normal(size=X.shape)])  # 2,414 rows: subset path
    a, b = mclust(Xbig, 7, seed=1), mclust(Xbig, 7, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(r_sample(len(Xbig), 2000, 1), r_sample(len(Xbig), 2000, 2))


def test_refine_labels_on_dlpfc(dlpfc, dlpfc_python_labels):
    "GraphST refinement (50 nearest spots) smooths labels and does not lower ARI on DLPFC; kNN, never N×N."
    _, truth, coords = dlpfc
    refined = refine_labels(dlpfc_python_labels, coords, n_neighbors=50)
    assert refined.shape == dlpfc_python_labels.shape
    changed = float((refined != dlpfc_python_labels).mean())
    assert 0.0 < changed < 0.5
    assert cluster_scores(truth, refined)["ari"] >= cluster_scores(truth, dlpfc_python_labels)["ari"]


def test_leiden_resolution_search_hits_seven(dlpfc):
    from sklearn.neighbors import kneighbors_graph
    X, truth, _ = dlpfc
    graph = kneighbors_graph(X, 15, include_self=False)
    labels = leiden(graph, n_clusters=7, seed=0)
    assert len(np.unique(labels)) == 7
    assert cluster_scores(truth, labels)["ari"] > 0.1
    assert np.array_equal(labels, leiden(graph, n_clusters=7, seed=0))


@pytest.mark.parametrize("call,msg", [
    (lambda X: mclust(X, len(X) + 1), "exceeds"),
    (lambda X: mclust(X, 1), "at least 2"),
    (lambda X: mclust(np.where(np.eye(len(X), X.shape[1]) > 0, np.nan, X), 3), "NaN"),
    (lambda X: mclust(X, 3, backend="matlab"), "backend"),
    (lambda X: kmeans(X, len(X) + 1), "exceeds"),
    (lambda X: refine_labels(np.zeros(len(X) - 1), X[:, :2]), "must align"),
])
def test_bad_input(call, msg):
    X = np.random.default_rng(0).normal(size=(40, 4))
    with pytest.raises(InputError, match=msg):
        call(X)


def test_r_backend_error_names_python_fallback(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_rpy2(name, *args, **kwargs):
        if name.startswith("rpy2"):
            raise ImportError("no rpy2 here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_rpy2)
    with pytest.raises(ImportError, match="backend='python'"):
        mclust(np.random.default_rng(0).normal(size=(30, 3)), 2, backend="r")
