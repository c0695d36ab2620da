"""Real-data checks of stlit.m2st on the authors' own STARmap inputs (1,207 cells, 7 layer domains).

Numbers are measured, not hard-coded: thresholds sit below what we measured (see experiments/m2st_reproduce.ipynb)
so that a broken update rule or training loop fails, while seed-to-seed variation passes.
"""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from stlit.m2st import OUTPUTS, M2STConfig, embed, fit, multiscale_cluster, train_autoencoder
from stlit.method import changed_keys, outputs_of
from stlit.metrics import cluster_scores


@pytest.fixture(scope="module")
def starmap(data_root):
    "The authors' STARmap inputs (stlit.data.load('m2st_starmap')): features, graph, labels, their embedding."
    from stlit.data import load
    a = load("m2st_starmap")
    return dict(X=np.asarray(a.X), A=a.obsp["adjacency"], y=a.obs["truth"].to_numpy(),
                views=[a.obsm["m2st_view1"], a.obsm["m2st_view2"]])


def test_clustering_alone_on_authors_embedding(starmap):
    "Part B alone on the released STARmap embedding: multiscale_cluster's own defaults (the authors' values) and their tuned point."
    y, views = starmap["y"], starmap["views"]
    res = multiscale_cluster(views, 7, n_init=5, seed=0)
    scores = cluster_scores(y, res.labels)
    print("multiscale_cluster defaults (authors' values) on STARmap_embded.mat:", {k: round(scores[k], 3) for k in ("ari", "nmi", "purity")})
    assert scores["ari"] > 0.35
    assert len(np.unique(res.labels)) == 7
    np.testing.assert_allclose(res.weights.sum(), 1.0)
    # the authors' selected point (results/STARmap_results.mat): lambda1=100, lambda2=1e-5, lambda3=0.1, s=40
    tuned = multiscale_cluster(views, 7, lambda1=100, lambda2=1e-5, lambda3=0.1, dim_specific=40, n_init=2, seed=0)
    restart_aris = [cluster_scores(y, lab)["ari"] for lab in tuned.restart_labels]
    print("authors' tuned point, ARI per restart:", np.round(restart_aris, 3))
    assert max(restart_aris) > 0.55  # the authors released 0.610 for their best MATLAB run


def test_clustering_same_seed_same_labels(starmap):
    a = multiscale_cluster(starmap["views"], 7, n_init=2, seed=3)
    b = multiscale_cluster(starmap["views"], 7, n_init=2, seed=3)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_autoencoder_on_authors_features(starmap):
    "Part A on the authors' 300-d PCA and graph (5 isolated cells, kept), then Part B: ARI reported and checked."
    torch.set_num_threads(1)
    cfg = M2STConfig(hidden_dim=128, n_epochs=60, loss_patience=None)  # all 60 epochs
    res = train_autoencoder(starmap["X"], starmap["A"], cfg, seed=0)
    loss = res.history["loss"].to_numpy()
    assert loss[-10:].mean() < loss[:10].mean()
    views = embed(res.model, starmap["X"], starmap["A"])
    assert [v.shape for v in views] == [(1207, 128), (1207, 64)]
    labels = multiscale_cluster(views, 7, n_init=3, seed=0).labels
    scores = cluster_scores(starmap["y"], labels)
    print("STARmap AE (60 epochs) + clustering:", {k: round(scores[k], 3) for k in ("ari", "nmi", "purity")})
    assert scores["ari"] > 0.3


def test_isolated_cells_kept_with_a_warning(starmap, caplog_stlit):
    "The authors' STARmap graph has 5 cells without neighbours: kept (carried by their self loop), with a warning."
    train_autoencoder(starmap["X"], starmap["A"], M2STConfig(n_epochs=1), seed=0)
    assert "5 isolated node(s)" in caplog_stlit.text


@pytest.fixture()
def caplog_stlit(caplog):
    "caplog that also sees the 'stlit' logger (which does not propagate to the root logger)."
    import logging
    logger = logging.getLogger("stlit")
    logger.addHandler(caplog.handler)
    with caplog.at_level(logging.INFO, logger="stlit"):
        yield caplog
    logger.removeHandler(caplog.handler)


def _ccst_numpy(X, n_pcs=200, min_cells=3, max_fraction=0.05, seed=0):
    "The CCST recipe written out in NumPy/scikit-learn (stlit's m2st.preprocess before it composed scanpy)."
    from sklearn.decomposition import PCA
    X = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    X = X[:, (X > 0).sum(0) >= min_cells]
    high = (X > max_fraction * np.maximum(X.sum(1, keepdims=True), 1e-12)).any(0)
    size = X[:, ~high].sum(1, keepdims=True)
    X = X / np.where(size > 0, size, 1.0)
    sd = X.std(0, ddof=1)
    X = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    return PCA(int(min(n_pcs, X.shape[0] - 1, X.shape[1] - 1)), random_state=seed).fit_transform(X).astype(np.float32)


@pytest.fixture(scope="module")
def dlpfc_labelled(data_root):
    "DLPFC 151673 with its unlabelled spots dropped (the usual first step before scoring)."
    from stlit.data import load
    a = load("dlpfc_151673")
    return a[a.obs["truth"].notna()].copy()


def test_preprocess_matches_the_numpy_recipe(dlpfc_labelled):
    "m2st.preprocess (scanpy + stlit.pp.pca) gives the PCs of the NumPy recipe on DLPFC 151673, writing nothing."
    from stlit.m2st import preprocess
    before = dlpfc_labelled.copy()
    ours = preprocess(dlpfc_labelled, n_pcs=50)
    ref = _ccst_numpy(dlpfc_labelled.X, n_pcs=50)
    sign = np.sign((ours * ref).sum(0))
    print("max |difference| after sign alignment:", np.abs(ours * sign - ref).max(), "of max", np.abs(ref).max())
    np.testing.assert_allclose(ours * sign, ref, atol=1e-4 * np.abs(ref).max())
    assert changed_keys(before, dlpfc_labelled) == set()


def test_fit_on_labelled_dlpfc_keeps_the_isolated_spot(dlpfc_labelled, caplog_stlit):
    "The plain call of issue 9 on DLPFC 151673 without its unlabelled spots: one isolated spot, warned and recorded."
    adata = dlpfc_labelled.copy()
    before = adata.copy()
    torch.set_num_threads(1)
    fit(adata, 7, seed=0, n_epochs=2, n_pcs=30, hidden_dim=32, n_init=1, max_iter=3, verbose=False)
    assert adata.uns["m2st"]["inputs"]["n_isolated"] == 1
    assert "1 isolated node(s)" in caplog_stlit.text
    assert changed_keys(before, adata) == outputs_of(OUTPUTS, "m2st")
    assert adata.uns["m2st"]["inputs"]["graph"].startswith("built: Visium hex rings")
    if not adata.uns["m2st"]["converged"]:
        assert "did not converge" in caplog_stlit.text


def test_clustering_uses_stlit_cluster_kmeans(monkeypatch):
    "Part B's k-means starts and the kmeans ablation go through stlit.cluster.kmeans (one k-means in the package)."
    import stlit._m2st_cluster as part_b
    import stlit.m2st as m2st
    calls = []
    real = m2st.kmeans
    spy = lambda *a, **k: calls.append(k) or real(*a, **k)
    monkeypatch.setattr(m2st, "kmeans", spy)
    monkeypatch.setattr(part_b, "kmeans", spy)
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(60, 4)), rng.normal(size=(60, 3))]
    multiscale_cluster(views, 3, n_init=2, max_iter=2, seed=0)
    assert [c["seed"] for c in calls] == [0, 1]
    m2st.fit(__import__("anndata").AnnData(np.zeros((60, 1), np.float32)), 3, embeddings=views, clustering="kmeans",
             feature_scale=False, verbose=False)  # no graph, no counts: the given embeddings alone
    assert len(calls) == 3


@pytest.fixture(scope="module")
def bz5(data_root):
    "STARmap mPFC section BZ5 (1,049 cells, 166 genes, counts): a small real section for the default path."
    from stlit.data import load
    return load("starmap_mpfc", section="BZ5")


def test_hvg_features_are_the_baselines_inputs(bz5):
    "features='hvg' gives smoothed_pca_gmm's inputs (seurat_v3 HVGs, log, scale, PCA 30), writing nothing."
    from stlit import baselines
    from stlit.m2st import preprocess_hvg
    before = bz5.copy()
    ours = preprocess_hvg(bz5, n_pcs=30, seed=0)
    work, _, info = baselines._inputs(bz5, 4, "spatial", None, None)  # what smoothed_pca_gmm reads
    ref = baselines._features(work, info["counts"], 30, 0)
    sign = np.sign((ours * ref).sum(0))
    np.testing.assert_allclose(ours * sign, ref, atol=1e-3 * np.abs(ref).max())
    assert ours.shape == (1049, 30) and ours.dtype == np.float32
    assert changed_keys(before, bz5) == set()


def test_default_path_same_seed_same_labels(bz5):
    "The default recipe (HVG inputs, loss-based stopping, smoothing option) on real counts: same seed, same labels."
    torch.set_num_threads(1)
    kw = dict(hidden_dim=32, n_epochs=15, n_init=2, dim_specific=10, verbose=False, smooth=True)
    a, b = bz5.copy(), bz5.copy()
    ra, rb = fit(a, 4, seed=1, **kw), fit(b, 4, seed=1, **kw)
    np.testing.assert_array_equal(ra.labels, rb.labels)
    assert a.uns["m2st"]["inputs"]["features"].startswith("HVG (seurat_v3) PCA")
    assert a.uns["m2st"]["inputs"]["n_features"] == 30
    n_run = a.uns["m2st"]["inputs"]["n_epochs_run"]
    assert n_run == len(ra.history) <= 15
    assert set(ra.cpu_seconds) == {"features", "graph", "autoencoder", "clustering"}


@pytest.mark.parametrize("field, value, message", [
    ("features", "pca", "features must be one of"), ("hvg_flavor", "v9", "hvg_flavor"),
    ("loss_patience", 0, "loss_patience"), ("loss_patience", 2.5, "loss_patience"),
    ("loss_min_delta", -0.1, "loss_min_delta"), ("smooth", "yes", "smooth must be"), ("n_top_genes", 0, "n_top_genes"),
    ("feature_scale", 1, "feature_scale must be"),
    ("n_pcs", 0, "n_pcs")])
def test_new_options_bad_values(field, value, message):
    from stlit.core import InputError
    with pytest.raises(InputError, match=message):
        M2STConfig(**{field: value}).validate()
    with pytest.raises(InputError, match=message):
        M2STConfig.paper(**{field: value}).validate()


def test_part_b_defaults_are_the_label_free_selection():
    """M2STConfig's Part B defaults are the point that benchmarks/m2st_default_selection.py's rule (fixed in the
    script) picks from its committed CSV: silhouette on datasets that no domain table scores."""
    import importlib.util
    from pathlib import Path

    import pandas as pd
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("m2st_default_selection", root / "benchmarks" / "m2st_default_selection.py")
    selection = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(selection)
    table = pd.read_csv(selection.CSV)
    scored = set(pd.read_csv(root / "benchmarks" / "results" / "domains.csv")["dataset"])
    assert set(table["dataset"]) == set(selection.DATASETS) and not set(table["dataset"]) & scored
    assert {(d, k, s) for d, k, s in zip(table["dataset"], table["K"], table["seed"])} >= \
        {(d, k, s) for d in selection.DATASETS for k in selection.KS for s in selection.SEEDS}
    point, summary = selection.choose(table)
    assert len(summary) == np.prod([len(v) for v in selection.GRID.values()])
    cfg = M2STConfig()
    assert {k: getattr(cfg, k) for k in point} == point


def test_inputs_defaults_are_the_stability_selection():
    """M2STConfig's smooth / feature_scale / clustering defaults are the point that benchmarks/m2st_smooth_selection.py's
    rule (fixed in the script) picks from its committed stability table: seed stability on never-scored datasets."""
    import importlib.util
    from pathlib import Path

    import pandas as pd
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("m2st_smooth_selection", root / "benchmarks" / "m2st_smooth_selection.py")
    selection = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(selection)
    runs = selection._read()
    stab = pd.read_csv(selection.CSV.with_name("m2st_smooth_selection_stability.csv"), dtype={"loss_patience": str},
                       keep_default_na=False, na_values=[""])
    scored = set(pd.read_csv(root / "benchmarks" / "results" / "domains.csv")["dataset"])
    assert set(runs["dataset"]) == set(stab["dataset"]) == set(selection.DATASETS) and not set(runs["dataset"]) & scored
    n_points = np.prod([len(v) for v in selection.GRID.values()])
    assert len(runs) == len(selection.DATASETS) * len(selection.KS) * len(selection.SEEDS) * n_points
    assert len(stab) == len(selection.DATASETS) * len(selection.KS) * n_points
    point, summary = selection.choose(stab)
    assert len(summary) == n_points
    cfg, point = M2STConfig(), selection._fields(point)
    assert {k: getattr(cfg, k) for k in point} == point
    assert M2STConfig.paper().feature_scale is False  # the authors' pipeline has no feature scale

