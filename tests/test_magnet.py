"""MAGNET: the method contract on synthetic cells (fast), and real seqFISH (DeepLinc copy) end to end at reduced
settings, both protocols, bad input."""
import dataclasses
import inspect
import logging
import random

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from stlit import magnet
from stlit.core import InputError, logger
from stlit.method import changed_keys, check_signature, outputs_of

# Synthetic cells: fast settings (few permutations, the covariance GRN, one walk per gene, 8 genes per cell).
FAST_TOY = dict(lr_permutations=10, genes_per_cell=8, grn_method="covariance", node2vec_walks_per_node=1)


@pytest.fixture(scope="module")
def toy():
    from stlit.data import toy_cells
    torch.set_num_threads(1)
    adata = toy_cells(n_cells=120, n_genes=30, seed=0)
    return adata, magnet.prepare(adata, seed=0, **FAST_TOY)


class _Records(logging.Handler):
    "Collects the messages of the 'stlit' logger (which does not propagate to the root logger pytest watches)."
    def __enter__(self):
        self.messages = []
        logger.addHandler(self)
        return self

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __exit__(self, *exc):
        logger.removeHandler(self)


def _rng_state():
    return random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()


def _same_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_fit_and_prepare_take_the_contract_and_input_arguments_by_name():
    fit = inspect.signature(magnet.fit).parameters
    for name in ("spatial_key", "layer", "use_rep", "key_added", "seed", "device", "verbose", "config", "lr_table",
                 "grn", "gene_features", "inputs", "target", "test_fraction", "protocol", "views"):
        assert fit[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert check_signature(magnet.fit) == []
    assert fit["key_added"].default == "magnet" and fit["verbose"].default is True
    prep = inspect.signature(magnet.prepare).parameters
    for name in ("spatial_key", "layer", "use_rep", "seed", "config", "lr_table", "grn", "gene_features", "views"):
        assert name in prep, name


def test_unknown_settings_are_input_errors(toy):
    adata, inputs = toy
    with pytest.raises(InputError, match="unknown setting"):
        magnet.prepare(adata, n_epochs=3)
    with pytest.raises(InputError, match="unknown setting"):
        magnet.fit(adata.copy(), n_epochs=3, verbose=False)
    with pytest.raises(InputError, match="unknown setting"):
        magnet.fit(adata.copy(), inputs=inputs, n_epochs=3, verbose=False)


def test_settings_that_shaped_the_inputs_cannot_be_overridden(toy):
    adata, inputs = toy  # prepared with genes_per_cell=8
    a = adata.copy()
    with pytest.raises(InputError, match="genes_per_cell"):
        magnet.fit(a, inputs=inputs, genes_per_cell=10, epochs=2, verbose=False)
    with pytest.raises(InputError, match="genes_per_cell"):  # a config= built from the defaults (30 genes)
        magnet.fit(a, inputs=inputs, config=magnet.MagnetConfig(epochs=2), verbose=False)
    with pytest.raises(InputError, match="lr_table"):
        magnet.fit(a, inputs=inputs, lr_table=adata.uns["lr_pairs"], epochs=2, verbose=False)
    with pytest.raises(InputError, match="layer"):
        magnet.fit(a, inputs=inputs, layer="counts", epochs=2, verbose=False)
    assert "magnet" not in a.uns
    magnet.fit(a, inputs=inputs, genes_per_cell=8, epochs=2, eval_every=1, verbose=False)  # the same value is fine
    params = a.uns["magnet"]["params"]
    assert (params["genes_per_cell"], params["lr_permutations"], params["epochs"]) == (8, 10, 2)
    assert params["lr_sigma"] is None and params["use_rep"] is None  # None stays None


def test_uns_record_holds_params_history_and_derived_inputs(toy):
    adata, inputs = toy
    a = adata.copy()
    magnet.fit(a, inputs=inputs, epochs=2, eval_every=1, verbose=False)
    rec = a.uns["magnet"]
    assert {"params", "history", "inputs", "scores", "seconds"} <= set(rec)
    assert len(rec["history"]["epoch"]) == 2
    derived = rec["inputs"]
    assert derived["species"] is None and derived["species_source"] == "adata.uns['lr_pairs']"
    assert derived["n_lr_pairs"] == len(inputs.lr_pairs) > 0
    assert list(derived["views"]) == list(magnet.VIEWS) and derived["spatial_key"] == "spatial"
    assert isinstance(derived["n_isolated"], int) and derived["n_isolated"] >= 0


def test_outputs_are_the_declared_ones(toy):
    adata, inputs = toy
    a = adata.copy()
    before = a.copy()
    magnet.fit(a, inputs=inputs, key_added="mg", epochs=2, verbose=False)
    assert outputs_of(magnet.OUTPUTS, "mg") == {("obsm", "X_mg"), ("obsm", "mg_view_weights"),
                                                 ("obsp", "mg_interactions"), ("uns", "mg")}
    assert changed_keys(before, a) == outputs_of(magnet.OUTPUTS, "mg")
    for slot, templates in magnet.OUTPUTS.items():  # fit's docstring lists every output
        for t in templates:
            named = f"{slot}[key_added]" if t == "{key}" else f"{slot}['{t.replace('{key}', '{key_added}')}']"
            assert named in magnet.fit.__doc__, named


def test_no_global_rng_change_and_same_seed_same_scores(toy):
    adata, inputs = toy
    random.seed(3); np.random.seed(3); torch.manual_seed(3)
    state = _rng_state()
    first = magnet.fit(adata.copy(), seed=1, epochs=3, eval_every=3, verbose=False, **FAST_TOY)  # prepare inside
    assert _same_state(state, _rng_state()), "fit changed the process-wide random state"
    second = magnet.fit(adata.copy(), seed=1, epochs=3, eval_every=3, verbose=False, **FAST_TOY)
    assert first.scores == second.scores
    magnet.baseline_scores(inputs, first.split, "vgae", epochs=3)
    magnet.split_edges(first.target, 0.3, seed=2)
    assert _same_state(state, _rng_state()), "baseline_scores or split_edges changed the process-wide random state"


def test_isolated_cells_of_the_spatial_view_are_kept_warned_and_recorded(toy):
    adata, inputs = toy
    spatial = inputs.views["spatial"].tolil()
    spatial[0, :] = 0
    spatial[:, 0] = 0
    cut = dataclasses.replace(inputs, views={**inputs.views, "spatial": sp.csr_matrix(spatial)})
    a = adata.copy()
    with _Records() as log:
        magnet.fit(a, inputs=cut, protocol="paper", epochs=2, verbose=False)
    assert a.uns["magnet"]["inputs"]["n_isolated"] == 1
    assert any("1 isolated" in m for m in log.messages), log.messages
    assert a.obsm["X_magnet"].shape[0] == adata.n_obs  # the cell is kept


def test_check_views_is_public_and_used():
    assert magnet.check_views(["spatial", "lr"]) == ("spatial", "lr")
    with pytest.raises(InputError, match="not available"):
        magnet.check_views(("spatial", "lr"), available=("spatial", "similarity"))
    with pytest.raises(InputError, match="non-empty"):
        magnet.check_views(())


def test_use_rep_gives_the_cell_features_and_a_missing_key_is_named(toy):
    adata, _ = toy
    a = adata.copy()
    a.obsm["X_rep"] = np.random.default_rng(0).normal(size=(a.n_obs, 12)).astype(np.float32)
    inputs = magnet.prepare(a, use_rep="X_rep", views=("spatial", "similarity"), **FAST_TOY)
    assert inputs.x_cell.shape == (a.n_obs, 12) and inputs.sources["use_rep"] == "X_rep"
    with pytest.raises(InputError, match="X_missing"):
        magnet.prepare(a, use_rep="X_missing", **FAST_TOY)


@pytest.mark.realdata
def test_species_guessed_from_gene_names_is_warned_and_recorded(data_root):
    from stlit.data import toy_cells
    adata = toy_cells(n_cells=120, n_genes=30, seed=0)  # mouse CellChatDB symbols (capitalised) + 'Gene0001' ...
    del adata.uns["lr_pairs"]
    adata.uns["dataset"] = {k: v for k, v in adata.uns["dataset"].items() if k != "species"}
    with _Records() as log:
        inputs = magnet.prepare(adata, **FAST_TOY)
    assert (inputs.sources["species"], inputs.sources["species_source"]) == ("mouse", "guessed from gene-name case")
    assert any("guessed as 'mouse'" in m for m in log.messages), log.messages
    magnet.fit(adata, inputs=inputs, epochs=2, verbose=False)
    assert adata.uns["magnet"]["inputs"]["species"] == "mouse"
    adata.uns["dataset"]["species"] = "mouse"  # a dataset record is used without a warning
    with _Records() as log:
        assert magnet.prepare(adata, **FAST_TOY).sources["species_source"] == "dataset record"
    assert not any("guessed" in m for m in log.messages)

# Reduced settings (the paper's are in MagnetConfig): fewer permutations, the fast GRN, one walk per gene, 25 epochs.
FAST = dict(lr_permutations=200, grn_method="covariance", node2vec_walks_per_node=1)
EPOCHS = 25


@pytest.fixture(scope="module")
def seqfish(data_root):
    from stlit.data import load
    if not (data_root / "deeplinc_seqfish" / "counts.csv").exists():
        pytest.skip("deeplinc_seqfish is absent")
    torch.set_num_threads(1)
    adata = load("seqfish_deeplinc")
    return adata, magnet.prepare(adata, seed=0, **FAST)


@pytest.mark.realdata
def test_seqfish_views_and_target(seqfish):
    adata, inputs = seqfish
    n = adata.n_obs
    assert sorted(inputs.views) == ["lr", "similarity", "spatial"]
    assert all(g.shape == (n, n) and g.nnz > 0 for g in inputs.views.values())
    assert inputs.genes.shape == (n, 30) and inputs.gene_features.shape == (n * 30, 64)
    assert len(inputs.lr_pairs) >= 1  # at least one database pair in the 125-gene panel
    target = magnet.build_target(inputs.views, "multiview", inputs.config)
    assert (target != target.T).nnz == 0 and target.diagonal().sum() == 0
    assert 5 * n // 2 <= target.nnz // 2 <= 5 * n  # every cell keeps its 5 strongest fused partners


@pytest.mark.realdata
def test_seqfish_both_protocols(seqfish):
    adata, inputs = seqfish
    adata = adata.copy()
    paper = magnet.fit(adata, inputs=inputs, protocol="paper", seed=0, epochs=EPOCHS, verbose=False)
    free = magnet.fit(adata, inputs=inputs, protocol="leak_free", seed=0, epochs=EPOCHS, verbose=False)
    assert np.array_equal(paper.split.test_pairs.numpy(), free.split.test_pairs.numpy())
    for res in (paper, free):
        assert 0.5 < res.scores["ap"] <= 1.0 and 0.5 < res.scores["auroc"] <= 1.0, res.scores
    assert adata.obsm["X_magnet"].shape == (adata.n_obs, 32)
    assert sp.issparse(adata.obsp["magnet_interactions"])
    np.testing.assert_allclose(adata.obsm["magnet_view_weights"].sum(1), 1.0, atol=1e-5)
    assert adata.uns["magnet"]["params"]["protocol"] == "leak_free"
    # the leak: under the paper's protocol, view membership alone recovers the held-out target edges
    leak = magnet.baseline_scores(inputs, paper.split, "views", protocol="paper")
    none = magnet.baseline_scores(inputs, paper.split, "views", protocol="leak_free")
    assert leak["ap"] > 0.95 and abs(none["ap"] - 0.5) < 0.01


@pytest.mark.realdata
def test_seqfish_bad_lr_table(seqfish):
    adata, _ = seqfish
    import pandas as pd
    human = pd.DataFrame({"ligand": ["TGFB1", "CXCL12"], "receptor": ["TGFBR1", "CXCR4"]})
    with pytest.raises(InputError, match="no ligand-receptor pair"):
        magnet.prepare(adata, lr_table=human, **FAST)


@pytest.mark.realdata
def test_seqfish_fusion_projection_prevents_weak_embeddings(seqfish):
    """Regression: with Eq. 14 alone (no output projection, as stlit shipped first) the decoder read a convex mix of
    LayerNorm outputs and leak-free AP stayed low (0.74 at 60 epochs here, 0.876 at 120); the authors' scale +
    projection MLP after the fusion gives 0.96 at 60 epochs."""
    adata, inputs = seqfish
    on = magnet.fit(adata.copy(), inputs=inputs, protocol="leak_free", seed=0, epochs=60, verbose=False)
    off = magnet.fit(adata.copy(), inputs=inputs, protocol="leak_free", seed=0, epochs=60, fusion_projection=False,
                     verbose=False)
    assert on.config.fusion_projection and not off.config.fusion_projection
    assert on.scores["ap"] >= 0.90, on.scores
    assert on.scores["ap"] >= off.scores["ap"] + 0.1, (on.scores, off.scores)


# --- MagnetConfig.code(): the authors' model and losses (issue 13)

def test_code_config_fits_and_records_its_fields(toy):
    adata, _ = toy
    cfg = magnet.MagnetConfig.code(**FAST_TOY)
    inputs = magnet.prepare(adata, config=cfg, seed=0)
    a = adata.copy()
    res = magnet.fit(a, inputs=inputs, config=cfg.__class__.code(**FAST_TOY, epochs=3, eval_every=3), verbose=False)
    params = a.uns["magnet"]["params"]
    assert (params["attention_block"], params["encoders"], params["alignment"], params["hard_negatives"]) == ("code",) * 4
    assert params["contrast_batch"] is None and params["gene_recon_weight"] == 1.0
    assert {"gene_recon", "contrast", "alignment"} <= set(res.history.columns), res.history.columns
    assert np.isfinite(res.history["loss"]).all() and 0 <= res.scores["ap"] <= 1
    np.testing.assert_allclose(res.view_weights.sum(1), 1.0, atol=1e-5)
    assert magnet.MagnetConfig().attention_block == "paper"  # the paper's configuration stays the default


def test_code_losses_keep_no_cell_by_cell_tensor():
    """Every tensor the code configuration saves for backward (model + the blocked losses) is O(N), not N x N; the
    dense reconstruction loss does save one (so the probe sees them)."""
    torch.manual_seed(0)
    n, k, genes = 600, 4, 20
    cfg = magnet.MagnetConfig.code(similarity_block=128, attention_head_dim=8)  # 8 heads of 8: a 64-wide projection
    model = magnet.MagnetModel(genes, 16, 3, cfg)
    x = torch.rand(n, genes)
    ring = torch.stack([torch.arange(n), (torch.arange(n) + 1) % n])
    adj = magnet.block_norm(np.random.default_rng(0).uniform(0, 1, (n, k, k)).astype(np.float32))
    largest = []

    def pack(t):
        largest.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, [ring, ring.flip(0), ring], torch.randn(n * k, 16), adj)
        loss = (magnet.code_contrastive_loss(out["z_views"], out["z_gene"], block=128)
                + magnet.code_alignment_loss(out["z"], x, model.anchor, block=128)
                + magnet.gene_recon_loss(out["gene_nodes"], torch.rand(n, k, k)))
    loss.backward()
    assert max(largest) <= n * 128 < n * n / 4, max(largest)  # the largest: (N, 128) block products
    largest.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        magnet.recon_loss(out["z"].detach().requires_grad_(), ring, dense=True)
    assert max(largest) >= n * n
