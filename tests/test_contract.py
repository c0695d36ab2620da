"""Every method follows the method contract of `stlit.method` (issue 9): checked here by introspection and by one small
run each: signature, unknown and doubly-given settings, outputs only under `key_added` (as declared in the module's
`OUTPUTS`), the `uns` record, the caller's random generators untouched, the input AnnData otherwise unchanged."""
import importlib
import importlib.util
import random

import numpy as np
import pytest
import torch

import stlit
from stlit.core import InputError
from stlit.method import changed_keys, check_signature, outputs_of


_HAS_IMAGES = importlib.util.find_spec("efficientnet_lite_pytorch") is not None


def _toy_domains():
    return stlit.data.toy_visium(n_rows=12, n_cols=12, n_genes=60, seed=0)


def _toy_cells():
    return stlit.data.toy_cells(n_cells=150, n_genes=40, seed=0)


# method name -> (make data, positional args of fit, fast settings, a field to check in uns params, config class)
UNSUPERVISED = {
    "m2st": (_toy_domains, (3,), dict(n_epochs=3, hidden_dim=16, n_init=1, max_iter=5, n_pcs=10), "n_epochs",
             "M2STConfig"),
    "magnet": (_toy_cells, (), dict(epochs=2, lr_permutations=10, grn_method="covariance", eval_every=1,
                                    node2vec_walks_per_node=1), "epochs", "MagnetConfig"),
    # the image branch needs the `images` extra; without it (the packaging test's fresh venv) the contract is checked
    # on the gene branch
    "iehercl": (_toy_domains, (3,), dict(n_epochs=3, pretrain_epochs=2, hidden_dim=16, latent_dim=8, n_top_genes=60,
                                         image_input_size=32, weights=None,
                                         **({} if _HAS_IMAGES else {"modality": "gene"})), "n_epochs", "IEHERCLConfig"),
}


def _rng_snapshot():
    return random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state().clone()


def _same_rng(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and torch.equal(a[2], b[2])


@pytest.mark.parametrize("name", sorted(UNSUPERVISED))
def test_signature_follows_contract(name):
    module = importlib.import_module(f"stlit.{name}")
    assert check_signature(module.fit) == []
    assert module.fit.__doc__ and "OUTPUTS" in dir(module)
    sig = __import__("inspect").signature(module.fit).parameters
    assert sig["key_added"].default == name and sig["seed"].default == 0 and sig["config"].default is None


@pytest.mark.parametrize("name", sorted(UNSUPERVISED))
def test_unknown_and_double_settings_are_input_errors(name):
    module = importlib.import_module(f"stlit.{name}")
    make, args, fast, field, config_name = UNSUPERVISED[name]
    adata = make()
    with pytest.raises(InputError, match="unknown setting"):
        module.fit(adata, *args, not_a_setting=1, verbose=False)
    config = getattr(module, config_name)(**{field: 7})
    with pytest.raises(InputError, match="both"):
        module.fit(adata, *args, config=config, **{field: 9}, verbose=False)


@pytest.mark.parametrize("name", sorted(UNSUPERVISED))
@pytest.mark.parametrize("key_added", [None, "custom"])
def test_run_writes_only_declared_outputs_and_keeps_rng(name, key_added):
    module = importlib.import_module(f"stlit.{name}")
    make, args, fast, field, config_name = UNSUPERVISED[name]
    adata = make()
    before = adata.copy()
    key = key_added or name
    kw = {} if key_added is None else {"key_added": key_added}
    random.seed(5); np.random.seed(5); torch.manual_seed(5)
    state = _rng_snapshot()
    module.fit(adata, *args, seed=1, device="cpu", verbose=False, **fast, **kw)
    assert _same_rng(state, _rng_snapshot()), f"{name}.fit changed the process-wide random state"
    assert changed_keys(before, adata) == outputs_of(module.OUTPUTS, key)
    record = adata.uns[key]
    assert {"params", "history", "inputs"} <= set(record)
    assert record["params"][field] == fast[field]  # the settings actually used
    assert record["params"].get("seed") == 1
    assert record["params"].get("device") == "cpu"  # the device actually used (GPU: tests/test_gpu.py)
