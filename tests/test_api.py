"""The public API that external checks call: names, signatures, and one small end-to-end use each."""
import inspect

import numpy as np
import pytest

import stlit


def _params(fn):
    return list(inspect.signature(fn).parameters)


def test_lazy_submodules():
    for name in ("core", "data", "pp", "graph", "train", "cluster", "metrics", "plot"):
        assert getattr(stlit, name).__name__ == f"stlit.{name}"
    with pytest.raises(AttributeError):
        stlit.not_a_module


def test_signatures():
    assert _params(stlit.data.load)[0] == "name"
    assert callable(stlit.data.datasets)
    p = inspect.signature(stlit.cluster.mclust).parameters
    assert list(p)[:2] == ["X", "n_clusters"] and "backend" in p and "seed" in p
    assert p["backend"].default == "python"
    assert _params(stlit.metrics.cluster_scores)[:2] == ["truth", "pred"]


def test_datasets_listed_and_unknown_name():
    names = stlit.data.datasets()
    assert isinstance(names, list) and len(names) >= 14 and all(isinstance(n, str) for n in names)
    with pytest.raises(KeyError, match="dlpfc_151673"):
        stlit.data.load("dlpfc_15167")  # typo: the error suggests the close match


def test_toy_end_to_end():
    "toy data -> PCA -> mclust (python) -> cluster_scores: domains are recovered well above chance."
    adata = stlit.data.toy_visium(seed=0)
    truth = adata.obs["truth"].to_numpy()
    X = np.log1p(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X)
    X = X - X.mean(0)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    emb = U[:, :10] * S[:10]
    k = len(set(truth))
    labels = stlit.cluster.mclust(emb, k, backend="python", seed=2020)
    scores = stlit.metrics.cluster_scores(truth, labels)
    assert {"ari", "nmi", "ami", "fmi", "purity"} <= set(scores)
    assert scores["ari"] > 0.3, scores
    again = stlit.cluster.mclust(emb, k, backend="python", seed=2020)
    np.testing.assert_array_equal(labels, again)


def test_no_import_time_warnings_from_torch_geometric():
    "A fresh process that uses each PyG-backed function prints neither torch's jit FutureWarning nor tqdm's IProgress."
    import subprocess, sys
    # One interpreter (was two, one per import order: ~12 CPU s each). Importing stlit.magnet and stlit.graph loads no
    # torch_geometric (checked below), so either import order reaches the same first PyG import: split_edges
    # (magnet's lazy imports were the leak, rendered book 2026-12-03), then to_pyg.
    code = ("import sys\n"
            "import numpy as np, scipy.sparse as sp\n"
            "import stlit.magnet as m, stlit.graph as g\n"
            "assert 'torch_geometric' not in sys.modules, 'importing stlit.magnet/stlit.graph loaded torch_geometric'\n"
            "A = sp.random(40, 40, density=0.2, random_state=0); A = A + A.T\n"
            "m.split_edges(A); g.to_pyg(A)\n"
            "assert 'torch_geometric' in sys.modules\n")
    out = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "torch.jit.script" not in out.stderr and "IProgress" not in out.stderr, out.stderr[-2000:]
