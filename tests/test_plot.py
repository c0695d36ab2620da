"""Tests for stlit.plot: every function on synthetic data (Agg backend), bad input, and real-data smoke tests."""
import json
import re
import time

import matplotlib

matplotlib.use("Agg")  # only here: the notebook uses the default inline backend

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from matplotlib.collections import LineCollection
from matplotlib.colors import to_hex, to_rgba
from scipy.stats import pearsonr
from sklearn.neighbors import kneighbors_graph

from stlit.core import InputError
from stlit import plot as pl
from stlit import _plot_base, _plot_tables


def _grid_adata(seed=0, n_rows=12, n_cols=16, scalef=0.5, image=True, hexagonal=True):
    "Synthetic Visium-like AnnData: grid/hex coordinates, 3 domains, NaN truth, scrambled predictions, an image."
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(n_rows), np.arange(n_cols), indexing="ij")
    x = (c.ravel() + (0.5 * (r.ravel() % 2) if hexagonal else 0)) * 50.0 + 100
    y = r.ravel() * 50.0 * (np.sqrt(3) / 2 if hexagonal else 1) + 100
    dom = np.digitize(x, np.quantile(x, [1 / 3, 2 / 3]))  # three vertical stripes
    truth = pd.Series(np.array(["A", "B", "C"])[dom], dtype="category")
    truth[rng.choice(len(x), 7, replace=False)] = np.nan
    pred = np.array(["7", "3", "5"])[dom]
    noise = rng.choice(len(x), 15, replace=False)
    pred[noise] = rng.choice(["7", "3", "5"], 15)
    X = np.eye(3)[dom] @ rng.gamma(2, 1, (3, 6)) + 0.2 * rng.random((len(x), 6))
    adata = ad.AnnData(X.astype(np.float32), obs=pd.DataFrame({"truth": truth.to_numpy(), "pred": pred},
                                                                index=[f"s{i}" for i in range(len(x))]),
                       var=pd.DataFrame(index=[f"g{i}" for i in range(6)]))
    adata.obs["truth"] = adata.obs["truth"].astype("category")
    adata.obsm["spatial"] = np.c_[x, y]
    adata.obsm["emb"] = np.eye(3)[dom] * 4 + rng.normal(size=(len(x), 4))[:, :3]
    adata.layers["pred_expr"] = (X + 0.3 * rng.normal(size=X.shape)).astype(np.float32)
    if image:
        h, w = int((y.max() + 100) * scalef), int((x.max() + 100) * scalef)
        adata.uns["spatial"] = {"lib": {"images": {"lowres": rng.random((h, w, 3)).astype(np.float32)},
                                        "scalefactors": {"tissue_lowres_scalef": scalef}}}
    return adata


@pytest.fixture
def adata():
    return _grid_adata()


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_match_labels_recovers_permutation():
    truth = np.repeat(["x", "y", "z", "w"], 25)
    names = {"x": "2", "y": "0", "z": "3", "w": "1"}
    pred = np.array([names[t] for t in truth])
    matched, mapping = pl.match_labels(truth, pred, return_mapping=True)
    assert mapping == {v: k for k, v in names.items()}
    assert (matched.to_numpy() == truth).all()


def test_spatial_domains_on_image(adata):
    axs = pl.spatial_domains(adata, image=True)
    assert len(axs) == 2 and all(len(a.images) == 1 for a in axs)
    assert [len(a.collections[0].get_offsets()) for a in axs] == [adata.n_obs] * 2
    np.testing.assert_allclose(axs[1].collections[0].get_offsets(), adata.obsm["spatial"] * 0.5)
    matched = pl.match_labels(adata.obs["truth"], adata.obs["pred"]).to_numpy()
    truth = adata.obs["truth"].to_numpy()
    fc0, fc1 = (a.collections[0].get_facecolors() for a in axs)
    for label in ["A", "B", "C"]:
        both = np.flatnonzero((truth == label) & (matched == label))
        assert len(both) > 10
        colours = {tuple(np.round(c, 6)) for c in np.r_[fc0[both], fc1[both]]}
        assert len(colours) == 1, f"domain {label} has {len(colours)} colours across truth and prediction"
    grey = fc0[np.flatnonzero(pd.isna(adata.obs["truth"]))]
    np.testing.assert_allclose(grey, np.tile(to_rgba("lightgray"), (len(grey), 1)))
    legend = [t.get_text() for t in axs[-1].get_legend().get_texts()]
    assert legend == ["A", "B", "C", "NA"]


def test_spatial_domains_without_image_and_single_key(adata):
    ax = plt.figure().add_subplot()
    axs = pl.spatial_domains(adata, keys="truth", image=False, ax=ax)
    assert axs == [ax] and len(ax.images) == 0
    assert ax.yaxis_inverted() and ax.get_aspect() == 1.0
    # auto mode without uns['spatial'] falls back to plain spots
    bare = _grid_adata(image=False, hexagonal=False)
    axs = pl.spatial_domains(bare)
    assert all(len(a.images) == 0 for a in axs)


def test_spatial_domains_more_clusters_than_domains(adata):
    adata.obs["pred4"] = adata.obs["pred"].astype(str)
    adata.obs.iloc[:5, adata.obs.columns.get_loc("pred4")] = "extra"
    axs = pl.spatial_domains(adata, keys=["truth", "pred4"])
    legend = [t.get_text() for t in axs[-1].get_legend().get_texts()]
    assert legend == ["A", "B", "C", "extra", "NA"]


def test_spatial_domains_bad_input(adata):
    with pytest.raises(KeyError, match="available columns"):
        pl.spatial_domains(adata, keys=["truth", "nope"])
    nocoords = adata.copy()
    del nocoords.obsm["spatial"]
    with pytest.raises(InputError, match=r"obsm\['spatial'\] is missing"):
        pl.spatial_domains(nocoords)
    with pytest.raises(InputError, match="image=False"):
        pl.spatial_domains(_grid_adata(image=False), image=True)
    with pytest.raises(InputError, match="'hires'"):
        pl.spatial_domains(adata, image=True, img_key="hires")


def test_embedding_umap_is_seeded_and_does_not_touch_adata(adata):
    before = adata.copy()
    a = pl.embedding_umap(adata, "emb", color=["truth", "pred"], seed=1)
    b = pl.embedding_umap(adata, "emb", color="truth", seed=1)
    assert len(a) == 2 and len(b) == 1
    np.testing.assert_allclose(a[0].collections[0].get_offsets(), b[0].collections[0].get_offsets(), atol=1e-5)
    assert set(adata.obsm) == set(before.obsm) and set(adata.uns) == set(before.uns)
    assert adata.obs.equals(before.obs)
    pl.embedding_umap(adata, "emb", color="truth", seed=1, key_added="X_umap")
    assert adata.obsm["X_umap"].shape == (adata.n_obs, 2)


def test_paga_nodes_in_domain_colours(adata):
    ax = pl.paga(adata, "emb", "pred", match_to="truth", key_added="paga")
    nodes = [c for c in ax.collections if len(c.get_offsets()) == 3]
    assert nodes
    palette = pl.domain_palette(["A", "B", "C"])
    assert [to_hex(c) for c in nodes[0].get_facecolors()] == [palette[k] for k in "ABC"]
    assert adata.uns["paga"]["categories"] == ["A", "B", "C"]


def test_gene_maps(adata):
    axs = pl.gene_maps(adata, ["g0", "g4"], predicted="pred_expr", image=True)
    assert axs.shape == (2, 2)
    for row, gene in enumerate(["g0", "g4"]):
        r = pearsonr(adata[:, gene].X.ravel(), adata[:, gene].layers["pred_expr"].ravel())[0]
        assert axs[row, 1].get_title() == f"{gene} predicted (r = {r:.2f})"
        assert len(axs[row, 0].images) == 1
        np.testing.assert_allclose(axs[row, 1].collections[0].get_array(), adata[:, gene].layers["pred_expr"].ravel())
    # predicted as an AnnData with the genes in another order
    pred = ad.AnnData(adata.layers["pred_expr"][:, ::-1].copy(), var=pd.DataFrame(index=adata.var_names[::-1]))
    axs = pl.gene_maps(adata, "g2", predicted=pred)
    np.testing.assert_allclose(axs[0, 1].collections[0].get_array(), adata.layers["pred_expr"][:, 2])
    # a constant prediction has no correlation
    axs = pl.gene_maps(adata, "g1", predicted=np.ones(adata.shape))
    assert "r = nan" in axs[0, 1].get_title()


def test_gene_maps_bad_input(adata):
    with pytest.raises(KeyError, match=r"\['nope'\] are not in adata.var_names"):
        pl.gene_maps(adata, ["g0", "nope"], predicted="pred_expr")
    with pytest.raises(KeyError, match="adata.layers"):
        pl.gene_maps(adata, "g0", predicted="missing_layer")
    with pytest.raises(InputError, match="genes"):
        pl.gene_maps(adata, "g0", predicted=np.ones((adata.n_obs, 2)))
    with pytest.raises(InputError, match="image=False"):
        pl.gene_maps(_grid_adata(image=False), "g0", predicted="pred_expr", image=True)


def test_interaction_edges_counts_and_colours(adata):
    A = kneighbors_graph(adata.obsm["spatial"], 4)
    sym = ((A + A.T) > 0).astype(float)
    ax = pl.interaction_edges(adata, A, color_by="truth")
    lines = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    assert len(lines.get_segments()) == sp.triu(sym, 1).nnz
    assert len(ax.images) == 1
    # directed keeps both directions (minus self loops)
    ax = pl.interaction_edges(adata, A, directed=True, image=False)
    lines = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    assert len(lines.get_segments()) == A.nnz
    # edge colours: an edge inside domain A has A's colour
    s, t = sp.triu(sym, 1).nonzero()
    truth = adata.obs["truth"].to_numpy()
    ax = pl.interaction_edges(adata, edge_index=np.vstack([s, t]), color_by="truth", image=False)
    lines = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    inside_a = np.flatnonzero((truth[s] == "A") & (truth[t] == "A"))
    colour_a = to_rgba(pl.domain_palette(["A", "B", "C"])["A"])
    np.testing.assert_allclose(lines.get_colors()[inside_a][:, :3], np.tile(colour_a[:3], (len(inside_a), 1)))


def test_interaction_edges_top_and_torch_edge_index(adata):
    import torch
    rng = np.random.default_rng(1)
    edge_index = torch.as_tensor(rng.integers(0, adata.n_obs, (2, 500)))
    weights = torch.as_tensor(rng.random(500))
    ax = pl.interaction_edges(adata, edge_index=edge_index, weights=weights, top=20, color_by="weight", image=False)
    lines = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    assert len(lines.get_segments()) == 20
    assert lines.get_array().min() >= np.sort(weights.numpy())[-40]


def test_interaction_edges_bad_input(adata):
    with pytest.raises(InputError, match="exactly one"):
        pl.interaction_edges(adata)
    with pytest.raises(KeyError, match="obsp"):
        pl.interaction_edges(adata, "spatial_connectivities")
    with pytest.raises(InputError, match="shape"):
        pl.interaction_edges(adata, sp.eye(3))
    with pytest.raises(InputError, match=r"\(2, n_edges\)"):
        pl.interaction_edges(adata, edge_index=np.zeros((3, 4), dtype=int))
    with pytest.raises(InputError, match="top"):
        pl.interaction_edges(adata, sp.eye(adata.n_obs, k=1), top=0)


def test_interaction_edges_scales_to_1e5_edges():
    rng = np.random.default_rng(0)
    n = 20000
    big = ad.AnnData(np.zeros((n, 1), dtype=np.float32))
    big.obsm["spatial"] = rng.random((n, 2)) * 1000
    A = kneighbors_graph(big.obsm["spatial"], 10)  # 2 * 10^5 directed edges
    tic = time.perf_counter()
    ax = pl.interaction_edges(big, A, directed=True, color_by="weight", spots=False)
    ax.figure.canvas.draw()
    seconds = time.perf_counter() - tic
    lines = [c for c in ax.collections if isinstance(c, LineCollection)][0]
    assert len(lines.get_segments()) == 200000
    assert seconds < 30, f"drawing 2e5 edges took {seconds:.1f} s"


def test_results_table_labels():
    df = pd.DataFrame({"metric": ["ARI", "NMI"], "paper": [0.6, 0.7], "ours": [0.65, 0.61]})
    styled = pl.results_table(df, "ours", "paper", index="metric")
    assert list(styled.data.columns) == ["paper (reported)", "stlit (measured, this run)", "difference (stlit − paper)"]
    np.testing.assert_allclose(styled.data.iloc[:, 2], [0.05, -0.09])
    html = styled.to_html()
    assert "#1a7f37" in html and "#cf222e" in html
    # lower is better flips the colours
    html = pl.results_table(df, "ours", "paper", index="metric", higher_is_better=False).to_html()
    assert html.index("#cf222e") < html.index("#1a7f37")
    with pytest.raises(KeyError, match="columns"):
        pl.results_table(df, "ours", "paper", index="dataset")


def test_training_history_from_fit():
    import torch
    from stlit.train import EarlyStopping, fit
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = x @ torch.randn(4, 1)
    model = torch.nn.Linear(4, 1)
    step = lambda m, e: {"loss": torch.nn.functional.mse_loss(m(x), y), "l1": m.weight.abs().sum() * 0}
    result = fit(model, step, 20, lr=0.1, device="cpu", verbose=False, eval_every=5,
                 eval_fn=lambda m: {"r": float(np.corrcoef(m(x).ravel(), y.ravel())[0, 1])},
                 early_stopping=EarlyStopping(monitor="r", mode="max", patience=10))
    ax = pl.training_history(result, logy=True)
    assert [l.get_label() for l in ax.get_lines()] == ["loss", "l1"]
    twin = [a for a in ax.figure.axes if a is not ax][0]
    assert len(twin.get_lines()[0].get_xdata()) == 4  # epochs 4, 9, 14, 19
    with pytest.raises(InputError, match="empty"):
        pl.training_history(pd.DataFrame())


def test_toy_visium_from_data_module():
    data = pytest.importorskip("stlit.data")
    if not hasattr(data, "toy_visium"):
        pytest.skip("stlit.data.toy_visium not available")
    adata = data.toy_visium(n_rows=12, n_cols=12, n_genes=60, n_domains=4, image=True)
    adata.obs["pred"] = adata.obs["truth"].cat.codes.astype(str)[::-1].to_numpy()
    axs = pl.spatial_domains(adata, image=True)
    assert all(len(a.images) == 1 for a in axs)
    scalef = adata.uns["spatial"]["toy_visium"]["scalefactors"]["tissue_hires_scalef"]
    np.testing.assert_allclose(axs[0].collections[0].get_offsets(), adata.obsm["spatial"] * scalef)


@pytest.mark.realdata
def test_dlpfc_151673_domains_on_lowres_image(data_root):
    folder = data_root / "dlpfc_151673"
    if not folder.exists():
        pytest.skip("dlpfc_151673 not present")
    adata = ad.read_h5ad(folder / "dlpfc151673_5000genes.h5ad")
    spatial = folder / "151673" / "spatial"
    # this h5ad's obsm['spatial'] is spatialLIBD's (imagecol, imagerow), i.e. LOWRES pixels (full-res × 0.045):
    # take full-resolution pixels from Space Ranger's tissue_positions_list.csv so the scale factors apply
    positions = pd.read_csv(spatial / "tissue_positions_list.csv", header=None, index_col=0).loc[adata.obs_names]
    adata.obsm["spatial"] = positions[[5, 4]].to_numpy(float)
    scalefactors = json.loads((spatial / "scalefactors_json.json").read_text())
    adata.uns["spatial"] = {"151673": {"images": {"lowres": plt.imread(spatial / "tissue_lowres_image.png")},
                                       "scalefactors": scalefactors}}
    truth = adata.obs["layer_guess_reordered"]
    rng = np.random.default_rng(0)
    codes = pd.Series(pd.Categorical(truth).codes)  # a fake prediction: truth with scrambled names and 10% noise
    pred = (codes * 3 + 1).astype(str).to_numpy()
    flip = rng.choice(adata.n_obs, adata.n_obs // 10, replace=False)
    pred[flip] = rng.choice(np.unique(pred), len(flip))
    adata.obs["pred"] = pred
    tic = time.perf_counter()
    axs = pl.spatial_domains(adata, keys=["layer_guess_reordered", "pred"], image=True)
    axs[0].figure.canvas.draw()
    assert time.perf_counter() - tic < 20
    matched = pl.match_labels(truth, pred)
    ok = truth.notna().to_numpy()
    assert (matched.to_numpy()[ok] == truth.to_numpy()[ok]).mean() > 0.85
    assert [len(a.collections[0].get_offsets()) for a in axs] == [adata.n_obs] * 2
    assert axs[0].images[0].get_array().shape[:2] == adata.uns["spatial"]["151673"]["images"]["lowres"].shape[:2]
    lowres = axs[0].collections[0].get_offsets()
    img_h, img_w = axs[0].images[0].get_array().shape[:2]
    assert lowres.min() > 0 and lowres[:, 0].max() < img_w and lowres[:, 1].max() < img_h, "spots lie on the image"
    ax = pl.interaction_edges(adata, kneighbors_graph(adata.obsm["spatial"], 6), color_by="layer_guess_reordered")
    assert len([c for c in ax.collections if isinstance(c, LineCollection)][0].get_segments()) > 3 * adata.n_obs


def test_table_for_reading():
    df = pd.DataFrame({"dataset": ["a", "b"], "stlit (measured, this run) nmi": [0.123456, np.nan],
                       "paper (reported) nmi": [0.2, 0.3], "seconds": [1.23456, 200.0], "spots": [1000, 20000],
                       "selected": [{"lambda3": 1e-3, "dim_specific": 40}, {"lambda3": 1.0, "dim_specific": 40}]})
    styled = pl.table(df, paper={"stlit (measured, this run) nmi": "paper (reported) nmi"}, index="dataset")
    assert list(styled.data.columns) == ["NMI", "NMI (paper)", "s", "spots", "selected λ3", "selected dim"]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", styled.to_html())
    assert cells == ["0.123", "0.200", "1.235", "1,000", "0.001", "40", "—", "0.300", "200.000", "20,000", "1.000", "40"]
    assert "'(paper)' columns: the paper's reported numbers" in styled.to_html()
    assert df["selected"].map(type).eq(dict).all() and "paper (reported) nmi" in df  # the input is left alone
    plain = pl.table(df[["dataset", "seconds"]])
    assert "(paper)" not in plain.to_html() and "Measured on this run" in plain.to_html()
    with pytest.raises(KeyError, match="not in the table"):
        pl.table(df, paper={"ari": "paper ari"})


def test_root_figure_without_get_figure_root():
    fig = plt.figure()
    ax = fig.subfigures(1, 2)[0].subplots()
    assert _plot_base._root_figure(ax) is fig

    class OldAxes:  # matplotlib < 3.10: get_figure() takes no `root`, and returns the subfigure
        def get_figure(self):
            return ax.get_figure(root=False)
    assert _plot_base._root_figure(OldAxes()) is fig


# stlit.plot's public names before the tables and training curves moved to nbs/08a_plot_tables.ipynb (stlit._plot_tables)
# and the label matching, colours and image to nbs/08_plot_base.ipynb (stlit._plot_base)
NAMES_BEFORE_SPLIT = ['PAPER_LABEL', 'OURS_LABEL', 'SHORT_NAMES', 'match_labels', 'domain_palette', 'tissue_image',
                      'spatial_domains', 'embedding_umap', 'paga', 'gene_maps', 'interaction_edges', 'results_table',
                      'table', 'training_history']


def test_names_kept_after_split():
    "Every public name of stlit.plot before the split is still there, in __all__ and `import *`, and moved names are the same objects."
    star = {}
    exec("from stlit.plot import *", star)
    assert sorted(pl.__all__) == sorted(NAMES_BEFORE_SPLIT) and set(NAMES_BEFORE_SPLIT) <= set(star)
    assert all(getattr(pl, n) is getattr(_plot_tables, n) is star[n] for n in _plot_tables.__all__)
    assert sorted(_plot_base.__all__) == ["domain_palette", "match_labels", "tissue_image"]
    assert all(getattr(pl, n) is getattr(_plot_base, n) is star[n] for n in _plot_base.__all__)
