"""stlit.img2expr: HGGEP's target, the three protocols, the metric tables, the baselines (synthetic) and real HER2+ data."""
import numpy as np
import pandas as pd
import pytest
import torch

from stlit import img2expr as ie
from stlit.core import InputError
from stlit.data import toy_visium


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):  # tests/conftest.py: one torch thread per test, the caller's setting restored
    yield

TINY = dict(backbone="shufflenet_v2_x0_5", weights=None, input_size=64)  # random trunk, no weights file needed


def _toy(seed, name, n_genes=30):
    a = toy_visium(n_rows=8, n_cols=8, n_genes=n_genes, n_domains=3, n_markers=5, seed=seed, fold_change=6.0)
    a.obs["section"] = name
    return a


@pytest.fixture(scope="module")
def toys():
    return [ie.prepare(_toy(s, n), [f"Gene{g:04d}" for g in range(30)], crop_size=100, crop_px=16)
            for s, n in enumerate(["A1", "A2", "B1", "B2"])]


# stlit.img2expr's public names before the learnt baselines moved to nbs/11c_img2expr_models.ipynb (stlit._img2expr_models)
NAMES_BEFORE_SPLIT = ['Baseline', 'ColourRidge', 'Fold', 'HESTRidge', 'HESTRidgeVal', 'HGGEP_HER2_FOLDS', 'HGGEP_LOG_BASE',
                      'HGGEP_TARGET_SUM', 'HISTOGENE_PROFILES', 'HisToGene', 'HisToGeneNet', 'METHODS', 'PROTOCOLS',
                      'STNET_PROFILES', 'STNet', 'SectionData', 'backbone_features', 'expression_counts',
                      'expression_target', 'folds', 'grid_positions', 'hggep_reference_table', 'library_size_factors',
                      'most_variable_genes', 'patient_of', 'pcc_per_gene', 'pcc_table', 'prepare', 'resolve_genes',
                      'run_baselines', 'section_name', 'summarise']


def test_names_kept_after_split():
    "Every public name of stlit.img2expr before the split is still there, is the same object, and is in __all__."
    from stlit import _img2expr_models
    assert sorted(ie.__all__) == sorted(NAMES_BEFORE_SPLIT)
    assert _img2expr_models.__all__ and set(_img2expr_models.__all__) <= set(NAMES_BEFORE_SPLIT)
    for name in _img2expr_models.__all__:
        assert getattr(ie, name) is getattr(_img2expr_models, name)
    assert ie.METHODS["stnet"] is _img2expr_models.STNet and issubclass(ie.HisToGene, ie.Baseline)
    ns = {}
    exec("from stlit.img2expr import *", ns)
    assert set(NAMES_BEFORE_SPLIT) <= set(ns)


def test_expression_target_is_scprep_normalisation():
    a = _toy(0, "A1")
    genes = list(a.var_names[5:25])
    counts = a[:, genes].layers["counts"].toarray().astype(float)
    expected = np.log10(1 + counts / counts.sum(1, keepdims=True) * 1e4)  # scprep library_size_normalize + log
    got = ie.expression_target(a, genes)
    np.testing.assert_allclose(got.to_numpy(), expected, rtol=1e-5, atol=1e-6)
    assert list(got.columns) == genes and list(got.index) == list(a.obs_names)
    assert a.layers["counts"].toarray().sum() == a.X.toarray().sum()  # input untouched


def test_expression_target_missing_genes():
    a = _toy(0, "A1")
    with pytest.raises(InputError, match="MISSING1.*MISSING2|2 of 3 genes"):
        ie.expression_target(a, ["Gene0001", "MISSING1", "MISSING2"])
    assert list(ie.expression_target(a, ["Gene0001", "MISSING1"], on_missing="drop").columns) == ["Gene0001"]
    with pytest.raises(InputError, match="missing"):
        ie.expression_target(a, ["NOPE"], on_missing="drop")  # nothing left
    with pytest.raises(InputError, match="more than once"):
        ie.expression_target(a, ["Gene0001", "Gene0001"])


def test_folds_protocols():
    secs = ["B4", "C2", "C3", "C4", "C5", "C6"]
    for f in ie.folds(secs, "leak_free", seed=1):
        assert len(f.test) == 1 and f.val not in f.test and f.val not in f.train and not f.leaks
        assert set(f.fit_pool) == set(secs) - set(f.test)
    paper = ie.folds(secs, "paper")
    assert all(f.leaks and f.val == f.test[0] and f.test[0] not in f.fit_pool for f in paper)
    b_out, c_out = ie.folds(secs, "patient", seed=0)
    assert b_out.test == ("B4",) and set(b_out.train) | {b_out.val} == {"C2", "C3", "C4", "C5", "C6"}
    assert c_out.test == ("C2", "C3", "C4", "C5", "C6") and c_out.train == ("B4",) and c_out.val is None
    assert ie.folds(secs, "patient", patients={"B4": "x", "C2": "x", "C3": "y", "C4": "y", "C5": "y", "C6": "y"})[0].test == ("B4", "C2")
    with pytest.raises(InputError, match="protocol"):
        ie.folds(secs, "random")


def test_pcc_table_counts_constant_genes():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(30, 3))
    y[:, 2] = 0.0
    tab = ie.pcc_table(y, y + 0.1 * rng.normal(size=y.shape), ["a", "b", "c"], section="S", method="m", protocol="p")
    assert tab["pcc"].iloc[:2].gt(0.9).all() and np.isnan(tab["pcc"].iloc[2])
    s = ie.summarise(tab)
    assert (s["n_genes"].item(), s["n_constant"].item()) == (2, 1)
    assert ie.pcc_per_gene(y, y).n_constant == 1


def test_same_seed_same_predictions_and_rng_untouched(toys):
    state = torch.random.get_rng_state(), np.random.get_state()[1].copy()
    fit = lambda seed: ie.HisToGene(patch_px=8, dim=32, depth=1, heads=4, epochs=4, lr=1e-3, seed=seed).fit(toys[:2], val=toys[2])
    p0, p1, p2 = (fit(s).predict(toys[3]) for s in (0, 0, 1))
    np.testing.assert_array_equal(p0, p1)
    assert not np.allclose(p0, p2)
    sn = lambda: ie.STNet(**TINY, trainable="all", epochs=1, batch_size=32, seed=3).fit(toys[:1]).predict(toys[3])
    np.testing.assert_allclose(sn(), sn(), atol=1e-6)
    assert torch.equal(state[0], torch.random.get_rng_state()) and np.array_equal(state[1], np.random.get_state()[1])


def test_epoch_choice_uses_the_validation_section(toys):
    m = ie.STNet(**TINY, epochs=6, seed=0).fit(toys[:2], val=toys[2])
    assert len(m.history["val_mean_pcc"]) == 6
    assert m.history["chosen_epoch"] == int(np.argmax(m.history["val_mean_pcc"])) + 1


def test_run_baselines_rows_and_labels(toys):
    cfg = {"hest_ridge": dict(TINY, n_components=8), "stnet": dict(TINY, epochs=2),
           "histogene": dict(patch_px=8, dim=32, depth=1, heads=4, epochs=2)}
    res = ie.run_baselines(toys, "paper", config=cfg, seed=0)
    assert {"section", "gene", "method", "protocol", "pcc", "weights", "val"} <= set(res.columns)
    assert len(res) == 4 * 5 * 30 and set(res["protocol"]) == {"paper"}
    deep = res[res.method.isin(["stnet", "histogene"])]
    assert (deep["val"] == deep["section"]).all()  # the paper protocol chooses on the test section
    assert res.loc[res.method == "colour_ridge", "val"].isna().all()  # a ridge chooses nothing
    with pytest.raises(InputError, match="other genes"):
        ie.ColourRidge().fit([toys[0], ie.prepare(_toy(9, "Z1"), ["Gene0001", "Gene0002"], crop_size=100, crop_px=16)])


def test_predict_needs_no_expression(toys):
    m = ie.ColourRidge().fit(toys[:2])
    a = _toy(5, "Q1")
    a.X = a.X * 0  # only the image is used
    del a.layers["counts"]
    assert m.predict(ie.prepare(a, crop_size=100, crop_px=16, with_target=False)).shape == (64, 30)


def test_grid_positions_square_and_hex():
    xy = np.array([[x * 274.0 + 3, y * 274.0 - 7] for x in range(5) for y in range(4)])
    g = ie.grid_positions(xy)
    assert g[:, 0].max() == 4 and g[:, 1].max() == 3 and len({tuple(r) for r in g}) == 20
    a = _toy(0, "A1")  # Visium hex lattice: 8 rows
    assert ie.grid_positions(a.obsm["spatial"])[:, 1].max() == 7


# ---------------------------------------------------------------- real HER2+ data
def test_colour_ridge_on_two_real_sections(data_root):
    from stlit.data import load
    secs = [ie.prepare(load("her2st", section=s)) for s in ("C2", "C3")]
    assert secs[0].crops.shape[1:] == (112, 112, 3) and secs[0].target.shape[1] == 785
    res = ie.run_baselines(secs, "leak_free", methods=["colour_ridge"])
    assert len(res) == 2 * 785
    summ = ie.summarise(res)
    assert np.isfinite(summ["mean_pcc"]).all() and (summ["n_genes"] > 700).all()
    assert res["pcc"].notna().sum() > 1500


def test_hggep_reference_rows_are_named_by_the_data(data_root):
    from stlit.data import load
    ref = ie.hggep_reference_table()
    folds = ref.loc[list(ie.HGGEP_HER2_FOLDS)]
    np.testing.assert_allclose(ref.loc["mean_over_folds"], folds.mean(0, skipna=False), atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ref.loc["median_over_folds"], folds.median(0, skipna=False), atol=1e-12, equal_nan=True)
    for section in ("A4", "A5", "A6", "B3", "B5"):  # the sections with a zero-count gene among the 785
        a = load("her2st", section=section, image=False)
        target = ie.expression_target(a)
        constant = set(target.columns[target.std(0) == 0])
        assert constant and constant == set(ref.columns[ref.loc[section].isna()]), section
    assert folds.drop(index=["A4", "A5", "A6", "B3", "B5"]).notna().all().all()
