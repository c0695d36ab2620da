"""IE-HERCL (issue 11): the method contract, reproducibility, the input checks, the gene-only fallback, O(N·k) graphs
and one small real-data run (HER2+ A1, the one labelled section with a real H&E image)."""
import inspect
import logging
import random

import numpy as np
import pytest
import scipy.sparse as sp
import torch

import stlit
from stlit import iehercl
from stlit.core import InputError
from stlit.method import changed_keys, check_signature, outputs_of

FAST = dict(n_epochs=10, pretrain_epochs=6, hidden_dim=32, latent_dim=16, n_top_genes=60, image_input_size=32,
            verbose=False, device="cpu")


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):  # tests/conftest.py
    yield


def _toy(**kw):
    return stlit.data.toy_visium(n_rows=12, n_cols=12, n_genes=60, seed=0, **kw)


def test_signature_and_outputs_follow_the_contract():
    assert check_signature(iehercl.fit) == []
    params = inspect.signature(iehercl.fit).parameters
    assert params["key_added"].default == "iehercl" and params["seed"].default == 0
    assert params["backbone"].default == "efficientnet_lite0" and params["refine"].default is True
    assert iehercl.OUTPUTS == {"obs": ["{key}"], "obsm": ["X_{key}", "{key}_modality_weights"], "uns": ["{key}"]}


@pytest.mark.parametrize("key_added", [None, "custom"])
def test_writes_only_declared_outputs_and_keeps_the_callers_rng(key_added):
    adata = _toy()
    before = adata.copy()
    key = key_added or "iehercl"
    random.seed(5); np.random.seed(5); torch.manual_seed(5)
    state = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    iehercl.fit(adata, 5, weights=None, seed=1, **FAST, **({} if key_added is None else {"key_added": key_added}))
    assert state[0] == random.getstate() and np.array_equal(state[1], np.random.get_state()[1])
    assert torch.equal(state[2], torch.get_rng_state())
    assert changed_keys(before, adata) == outputs_of(iehercl.OUTPUTS, key)
    rec = adata.uns[key]
    assert {"params", "history", "inputs"} <= set(rec)
    assert rec["params"]["seed"] == 1 and rec["params"]["n_epochs"] == FAST["n_epochs"]
    assert adata.obs[key].dtype.name == "category" and adata.obsm[f"X_{key}"].shape == (144, 16)
    w = adata.obsm[f"{key}_modality_weights"]
    assert w.shape == (144, 2) and np.allclose(w.sum(1), 1, atol=1e-5) and (w > 0).all()


def test_unknown_and_double_settings_are_input_errors():
    adata = _toy()
    with pytest.raises(InputError, match="unknown setting"):
        iehercl.fit(adata, 5, not_a_setting=1, verbose=False)
    with pytest.raises(InputError, match="both"):
        iehercl.fit(adata, 5, config=iehercl.IEHERCLConfig(n_epochs=7), n_epochs=9, verbose=False)


def test_same_seed_same_labels_on_cpu():
    a, b = _toy(), _toy()
    ra = iehercl.fit(a, 5, weights=None, seed=3, **FAST)
    rb = iehercl.fit(b, 5, weights=None, seed=3, **FAST)
    np.testing.assert_array_equal(ra.labels, rb.labels)
    np.testing.assert_array_equal(ra.embedding, rb.embedding)
    rc = iehercl.fit(_toy(), 5, weights=None, seed=4, **FAST)
    assert not np.array_equal(ra.embedding, rc.embedding)  # the seed does reach the model
    stages = ["inputs", "graphs", "train", "cluster"]  # wall and CPU seconds per stage, m2st's layout
    assert list(ra.seconds) == list(ra.cpu_seconds) == stages and min(ra.cpu_seconds.values()) >= 0
    assert a.uns["iehercl"]["cpu_seconds"] == pytest.approx(ra.cpu_seconds)


def test_no_image_runs_gene_only_and_says_so(caplog):
    adata = _toy(image=False)
    with caplog.at_level(logging.WARNING, logger="stlit"):
        res = iehercl.fit(adata, 5, **FAST)
    assert "genes only" in caplog.text
    rec = adata.uns["iehercl"]["inputs"]
    assert rec["modality"] == "gene" and "genes only" in rec["image_dropped"]
    np.testing.assert_array_equal(adata.obsm["iehercl_modality_weights"], np.c_[np.ones(144), np.zeros(144)])
    assert list(res.modality_weights.columns) == ["gene", "image"]


@pytest.mark.parametrize("case, match", [
    ("image_missing", "no usable image"),
    ("image_rep_missing", "image_rep"),
    ("not_covering", "outside"),
    ("crop_too_large", "larger than the image"),
    ("bad_backbone", "does not exist"),
    ("weights_path_missing", "cannot be found"),
    ("n_clusters_low", "n_clusters"),
    ("n_clusters_high", "n_clusters"),
    ("n_clusters_float", "n_clusters"),
])
def test_bad_input_is_a_clear_input_error(case, match):
    adata, kw, k = _toy(), dict(FAST), 5
    if case == "image_missing":
        del adata.uns["spatial"]
        kw["modality"] = "both"
    elif case == "image_rep_missing":
        kw["image_rep"] = "X_nope"
    elif case == "not_covering":
        adata.obsm["spatial"] = adata.obsm["spatial"] + 1e5
        kw["weights"] = None
    elif case == "crop_too_large":
        kw.update(crop_px=1e5, weights=None)
    elif case == "bad_backbone":
        kw["backbone"] = "resnet5000"
    elif case == "weights_path_missing":
        kw["weights"] = "/no/such/weights.pth"
    else:
        k = {"n_clusters_low": 1, "n_clusters_high": adata.n_obs, "n_clusters_float": 3.0}[case]
    with pytest.raises(InputError, match=match):
        iehercl.fit(adata, k, **kw)
    assert "iehercl" not in adata.obs and "iehercl" not in adata.uns  # nothing written on failure


def test_imagenet_weights_not_on_disk_are_an_error_unless_random_is_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))  # an empty torch cache
    adata = _toy()
    with pytest.raises(InputError, match="cannot be found"):
        iehercl.fit(adata, 5, backbone="resnet34", weights="imagenet", **FAST)
    for random_weights in (None, "random"):
        res = iehercl.fit(adata, 5, backbone="resnet34", weights=random_weights, **FAST)
        assert res.inputs["modality"] == "both" and "random" in res.inputs["image_input"]


def test_precomputed_image_features_and_variants():
    adata = _toy()
    adata.obsm["img"] = np.random.default_rng(0).normal(size=(144, 20)).astype(np.float32)
    res = iehercl.fit(adata, 5, image_rep="img", **FAST)
    assert res.inputs["image_input"] == "obsm['img']" and res.embedding.shape == (144, 16)
    res = iehercl.fit(adata, 5, image_rep="img", modality="image", **FAST)
    assert res.inputs["modality"] == "image" and np.allclose(res.modality_weights["image"], 1)
    for ablation in (dict(use_ae=False), dict(use_sage=False), dict(attention=False)):
        res = iehercl.fit(adata, 5, image_rep="img", **FAST, **ablation)
        assert set(res.intra_weights) == {"gene", "image"}
    assert np.allclose(res.modality_weights.to_numpy(), 0.5)  # attention=False: plain mean of the modalities


def test_the_crop_follows_the_appendix_rule_in_pixels_of_the_image_present():
    adata = _toy()
    auto = {**FAST, "image_input_size": None}  # the default CNN input side: the crop's own pixels, clipped to [32, 112]
    res = iehercl.fit(adata, 5, weights=None, **auto)
    scalef = adata.uns["spatial"]["toy_visium"]["scalefactors"]["tissue_hires_scalef"]
    assert res.inputs["crop_fullres_px"] == pytest.approx(0.70 * 55.0)
    assert res.inputs["crop_image_px"] == pytest.approx(0.70 * 55.0 * scalef)
    assert res.inputs["cnn_input_px"] == 32  # a 7.7-px crop: the 32-px floor
    res = iehercl.fit(adata, 5, weights=None, crop_px=250, **auto)
    assert res.inputs["crop_fullres_px"] == 250 and res.inputs["cnn_input_px"] == int(np.ceil(250 * scalef))
    with pytest.raises(InputError, match="image_input_size"):
        iehercl.fit(adata, 5, weights=None, **{**FAST, "image_input_size": 0})


def test_similarity_and_walk_graphs_are_linear_in_n():
    rng = np.random.default_rng(0)
    n, k, keep, order = 4000, 10, 50, 3
    X = rng.normal(size=(n, 30))
    S = iehercl.similarity_graph(X, sigma=0.1, k=k, n_pcs=None)
    assert S.nnz <= 2 * n * k and np.all(S.data <= 1) and np.all(S.data > 0)
    pos, reach = iehercl.random_walk_positives(S, order=order, n_positives=10, keep=keep)
    assert np.diff(pos.indptr).max() <= 10 and pos.diagonal().sum() == 0
    assert reach.nnz <= 2 * n * (2 * k + (order - 1) * keep)
    assert (pos.multiply(reach) != pos).nnz == 0  # positives are never negatives


def test_her2st_a1_real_image(data_root):
    "HER2+ A1: the real H&E (about 0.3 of full resolution), pathologist labels; a short run beats chance."
    adata = stlit.data.load("her2st", section="A1")
    res = iehercl.fit(adata, 6, n_epochs=30, pretrain_epochs=20, verbose=False, device="cpu")
    lib = next(iter(adata.uns["spatial"].values()))
    assert res.inputs["modality"] == "both" and "imagenet" in res.inputs["image_input"]
    assert res.inputs["crop_image_px"] == pytest.approx(0.70 * lib["scalefactors"]["spot_diameter_fullres"]
                                                        * lib["scalefactors"]["tissue_hires_scalef"])
    labelled = adata.obs["truth"].notna().to_numpy()
    ari = stlit.metrics.cluster_scores(adata.obs["truth"][labelled], res.labels[labelled])["ari"]
    assert ari > 0.1, ari


def test_isolated_spots_are_kept_with_a_warning(caplog):
    adata = _toy(image=False)
    adata.obsm["spatial"] = adata.obsm["spatial"].copy()
    adata.obsm["spatial"][0] = [-5000.0, -5000.0]  # far from every other spot
    with caplog.at_level(logging.WARNING, logger="stlit"):
        res = iehercl.fit(adata, 5, radius=150.0, **FAST)
    assert "isolated" in caplog.text and res.inputs["n_isolated"] == 1 and len(res.labels) == 144


@pytest.mark.parametrize("sparse", [True, False])
def test_gene_features_leave_the_counts_untouched(sparse):
    "gene_features no longer copies the counts: the caller's X (sparse or dense) must come out bit for bit the same."
    adata = _toy()
    adata.X = sp.csr_matrix(adata.X) if sparse else np.asarray(adata.X.toarray() if sp.issparse(adata.X) else adata.X)
    before = adata.X.copy()
    X, info = iehercl.gene_features(adata, n_top_genes=30, max_value=2.0)
    same = (adata.X != before).nnz == 0 if sparse else np.array_equal(adata.X, before)
    assert same and type(adata.X) is type(before)
    assert X.dtype == np.float32 and X.shape == (144, 30) and np.abs(X).max() <= 2.0
    assert np.allclose(X.mean(0), 0, atol=0.2) and "30 seurat HVGs" in info["gene_input"]


def test_cosmx_cells_with_per_field_crops(data_root):
    "CosMx Lung12 (2 fields, no labels): crops from each field's composite image → image_rep; fit runs on cells."
    adata = stlit.data.load("cosmx_lung12")
    stlit.pp.image_features(adata, 120, library_key="library_id", key_added="X_cnn", input_size=32, device="cpu")
    res = iehercl.fit(adata, 4, image_rep="X_cnn", refine=False, **FAST)
    assert res.inputs["modality"] == "both" and res.inputs["image_input"] == "obsm['X_cnn']"
    w = adata.obsm["iehercl_modality_weights"]
    assert w.shape == (adata.n_obs, 2) and np.allclose(w.sum(1), 1, atol=1e-5) and 0 < w[:, 1].mean() < 1
    assert adata.obs["iehercl"].nunique() >= 2
