"""Real-data checks of stlit.graph: Visium rings (DLPFC), m2ST's 151672 adjacency, TENET's seqFISH 5-NN graph,
MAGNET's LR / fuzzy / SNF views on seqFISH, and UMAP's smooth_knn_dist. Data are read directly with pandas/anndata."""
import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlit.graph import (adaptive_gaussian_knn, average_fusion, fuzzy_knn, grid_rings, knn_search, lr_graph,
                         smooth_knn_sigma, snf, snf_affinity, spatial_knn, spatial_neighbors, to_pyg, visium_rings)


def _need(path):
    if not path.exists():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="module")
def dlpfc_positions(data_root):
    path = _need(data_root / "dlpfc_151673" / "151673" / "spatial" / "tissue_positions_list.csv")
    return pd.read_csv(path, header=None, names=["barcode", "in_tissue", "array_row", "array_col", "pxl_row", "pxl_col"])


@pytest.fixture(scope="module")
def seqfish(data_root):
    root = _need(data_root / "deeplinc_seqfish")
    coords = pd.read_csv(root / "coord.csv")[["X", "Y"]].to_numpy(float)
    counts = pd.read_csv(root / "counts.csv")
    return coords, counts


@pytest.fixture(scope="module")
def cellchat_mouse(data_root):
    path = _need(data_root / "lr_database" / "commot_cellchat" / "CellChatDB.ligrec.mouse.csv")
    table = pd.read_csv(path, index_col=0)  # header ',0,1,2,3' = index, ligand, receptor, pathway, type
    table.columns = ["ligand", "receptor", "pathway", "type"]
    return table


def test_dlpfc_visium_rings(dlpfc_positions):
    "Ring-1 graph of DLPFC 151673: 6 neighbours for every spot inside the array, and for most in-tissue spots."
    pos = dlpfc_positions
    A_all = visium_rings(pos.array_row, pos.array_col)
    deg_all = A_all.getnnz(1)
    assert deg_all.max() == 6 and (deg_all == 6).mean() > 0.94  # only the 4992-spot array border has fewer
    tissue = pos[pos.in_tissue == 1]
    A = visium_rings(tissue.array_row, tissue.array_col)
    deg = A.getnnz(1)
    frac6 = (deg == 6).mean()
    print(f"DLPFC 151673: {len(tissue)} in-tissue spots, degree histogram {np.bincount(deg).tolist()}, "
          f"{frac6:.3f} have 6 neighbours")
    assert len(tissue) == 3639 and frac6 > 0.88 and deg.max() == 6
    assert (A != A.T).nnz == 0
    # the same graph from pixel coordinates alone
    G = grid_rings(tissue[["pxl_col", "pxl_row"]].to_numpy(float))
    assert (G != A).nnz == 0
    R2 = visium_rings(tissue.array_row, tissue.array_col, n_rings=2)
    assert R2.getnnz(1).max() == 18


def test_dlpfc_anndata_spatial_neighbors(data_root, dlpfc_positions):
    "spatial_neighbors(method='visium') on the h5ad uses obsm['array_rowcol'] and agrees with the positions file."
    import anndata as ad
    adata = ad.read_h5ad(_need(data_root / "dlpfc_151673" / "dlpfc151673_5000genes.h5ad"))
    spatial_neighbors(adata, method="visium")
    C = adata.obsp["spatial_connectivities"]
    rc = np.asarray(adata.obsm["array_rowcol"])
    ref = visium_rings(rc[:, 0], rc[:, 1])
    assert (C != ref).nnz == 0
    assert adata.uns["spatial_neighbors"]["params"]["n_rings"] == 1
    assert (C.getnnz(1) == 6).mean() > 0.88
    spatial_neighbors(adata, method="knn", k=6, key_added="knn6")
    assert adata.obsp["knn6_distances"].getnnz(1).min() >= 6


def test_m2st_151672_adjacency(data_root):
    "Our ring graph from m2ST's pixel coordinates vs the adjacency the m2ST authors fed their model."
    root = _need(data_root / "m2st_preprocessed" / "dlpfc_151672")
    coords = np.load(root / "coordinates.npy").astype(float)
    theirs = sp.load_npz(root / "adjacency.npz").tocsr()
    ours = grid_rings(coords)
    inter = ours.multiply(theirs).nnz
    jaccard = inter / (ours.nnz + theirs.nnz - inter)
    print(f"m2ST 151672: ours {ours.nnz} edges, theirs {theirs.nnz}, shared {inter}, Jaccard {jaccard:.4f}; "
          f"degree ours {np.bincount(ours.getnnz(1)).tolist()} theirs {np.bincount(theirs.getnnz(1)).tolist()}")
    assert np.array_equal(np.bincount(ours.getnnz(1), minlength=7), np.bincount(theirs.getnnz(1), minlength=7))
    assert jaccard == 1.0


def test_seqfish_knn5_matches_tenet(data_root, seqfish):
    "Directed 5-NN on seqFISH coord.csv equals TENET's derived 5-NN edge list."
    coords, _ = seqfish
    edges = np.load(_need(data_root / "deeplinc_seqfish" / "derived_TENET" / "celllevel_edgelist_knn5.npy"))
    ours = spatial_knn(coords, k=5, symmetrize=None)
    tenet = sp.csr_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])), shape=ours.shape)
    agree = ours.multiply(tenet).nnz / tenet.nnz
    print(f"seqFISH 5-NN: {ours.nnz} edges, TENET {tenet.nnz}, agreement {100 * agree:.2f}%")
    assert agree == 1.0 and ours.nnz == tenet.nnz
    adj_list = np.load(data_root / "deeplinc_seqfish" / "derived_TENET" / "celllevel_adjacencylist_knn5.npy")
    idx, _ = knn_search(coords, 5)
    assert np.array_equal(idx, adj_list)  # same neighbour order too


def test_magnet_lr_graph_seqfish(seqfish, cellchat_mouse):
    "MAGNET Eq. 2 LR graph on seqFISH with the mouse CellChat table: runs, reports the pairs present."
    coords, counts = seqfish
    t0 = time.time()
    res = lr_graph(counts.to_numpy(float), counts.columns, cellchat_mouse, coords, k=5, n_perm=1000, seed=0)
    dt = time.time() - t0
    print(f"seqFISH x CellChat mouse: {len(res.pairs)} of {len(cellchat_mouse)} pairs present "
          f"({res.pairs[['ligand', 'receptor']].values.tolist()}); {res.adjacency.nnz} edges kept, "
          f"{len(res.edges)} edge-pair rows, {dt:.1f} s")
    assert len(res.pairs) >= 1
    assert res.adjacency.getnnz(1).max() <= 5
    assert (res.edges["pvalue"] < 0.05).all()
    assert set(zip(res.edges.source, res.edges.target)) == set(zip(*res.adjacency.nonzero()))
    again = lr_graph(counts.to_numpy(float), counts.columns, cellchat_mouse, coords, k=5, n_perm=1000, seed=0)
    assert (again.adjacency != res.adjacency).nnz == 0  # seeded
    # the four pairs hard-coded in MAGNET's Pre_adj_cell.py
    code_pairs = pd.DataFrame({"ligand": ["Gdf5", "Gdf2", "Cdh1", "Ctla4"], "receptor": ["Bmpr1b"] * 4})
    res_code = lr_graph(counts.to_numpy(float), counts.columns, code_pairs, coords, n_perm=200, seed=0)
    assert len(res_code.pairs) == 4 and res_code.adjacency.nnz > 0


def test_magnet_views_and_snf_seqfish(seqfish):
    "The three MAGNET cell views on seqFISH fuse with sparse SNF and with the code's averaging."
    from sklearn.decomposition import PCA
    coords, counts = seqfish
    X = counts.to_numpy(float)
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    pcs = PCA(32, random_state=42).fit_transform(Z)
    Wd = adaptive_gaussian_knn(coords, k=5)
    Ws = fuzzy_knn(pcs, k=5)
    assert Wd.getnnz(1).min() == 5 and Ws.getnnz(1).min() == 5
    assert 0 < Ws.data.min() and Ws.data.max() <= 1
    aff = [snf_affinity(coords, K=20), snf_affinity(pcs, K=20)]
    t0 = time.time()
    F = snf(aff, K=20, t=10)
    dt = time.time() - t0
    print(f"sparse SNF on seqFISH (2 views, N={len(coords)}): {F.nnz} entries ({F.nnz / len(coords):.0f}/row), {dt:.1f} s")
    assert F.nnz < len(coords) * 200 and abs(F - F.T).max() < 1e-12
    avg = average_fusion([Wd, Ws], k=5)
    assert avg.getnnz(1).max() == 5
    g = to_pyg(avg, x=X)
    assert g.edge_index.shape[1] == avg.nnz and g.x.shape == X.shape


def test_sparse_snf_close_to_dense_on_real_data(seqfish):
    "On 400 seqFISH cells the K-NN-restricted SNF keeps the dense SNF's strongest neighbours."
    coords, counts = seqfish
    sub = np.arange(400)
    views = [coords[sub], counts.to_numpy(float)[sub]]
    dense = snf([snf_affinity(v, K=10, dense=True) for v in views], K=10, t=10)
    sparse = snf([snf_affinity(v, K=10) for v in views], K=10, t=10).toarray()
    np.fill_diagonal(dense, 0); np.fill_diagonal(sparse, 0)
    top_d, top_s = np.argsort(-dense, 1)[:, :5], np.argsort(-sparse, 1)[:, :5]
    overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top_d, top_s)])
    print(f"sparse vs dense SNF (N=400): top-5 neighbour overlap {overlap:.3f}")
    assert overlap > 0.8


def test_smooth_knn_sigma_matches_umap(seqfish):
    "Our vectorised σ search equals umap-learn's smooth_knn_dist (when umap-learn is installed)."
    umap_ = pytest.importorskip("umap.umap_")
    coords, _ = seqfish
    k = 15
    idx, dist = knn_search(coords, k)
    rho = dist[:, 0]
    ours = smooth_knn_sigma(dist, rho)
    with_self = np.column_stack([np.zeros(len(dist)), dist]).astype(np.float32)
    sig_umap, rho_umap = umap_.smooth_knn_dist(with_self, float(k + 1))
    np.testing.assert_allclose(rho_umap, rho, rtol=1e-5)
    np.testing.assert_allclose(ours, sig_umap, rtol=1e-3)


# stlit.graph's public names before MAGNET's views, SNF and the hypergraphs moved to nbs/03a_graph_fusion.ipynb
NAMES_BEFORE_SPLIT = ['symmetrize', 'remove_self_loops', 'binarize', 'normalize_adjacency', 'knn_search', 'spatial_knn',
                      'spatial_radius', 'visium_rings', 'grid_rings', 'spatial_neighbors', 'heat_kernel',
                      'adaptive_gaussian_knn', 'smooth_knn_sigma', 'fuzzy_knn', 'top_k_per_row', 'LRGraph',
                      'lr_pairs_in_panel', 'lr_pair_index', 'lr_graph', 'snf_affinity', 'snf', 'average_fusion',
                      'knn_hyperedges', 'hypergraph_incidence', 'edge_index', 'to_pyg', 'from_edge_index']


def test_graph_names_kept_after_split():
    "stlit.graph still has every public name (in __all__ and `import *`), the moved ones the same objects; snf's signature."
    import inspect
    import stlit.graph as graph
    from stlit import _graph_fusion
    namespace = {}
    exec("from stlit.graph import *", namespace)
    lost = [n for n in NAMES_BEFORE_SPLIT if n not in graph.__all__ or namespace.get(n) is not getattr(graph, n, None)]
    assert not lost and len(graph.__all__) == len(NAMES_BEFORE_SPLIT), (lost, graph.__all__)
    assert {n: getattr(graph, n) for n in _graph_fusion.__all__} == {n: getattr(_graph_fusion, n) for n in _graph_fusion.__all__}
    from stlit import _graph_base  # the helpers pages 03 and 03a share (no circular import: graph imports 03a eagerly)
    assert {n: getattr(graph, n) for n in _graph_base.__all__} == {n: getattr(_graph_base, n) for n in _graph_base.__all__}
    assert all(callable(getattr(graph, n)) for n in graph.__all__)  # every name in __all__ resolves
    assert str(inspect.signature(graph.snf)) == ("(affinities, K: 'int' = 20, t: 'int' = 20, alpha: 'float' = 1.0, "
                                                 "dense: 'bool | None' = None, max_dense: 'int' = 10000)")
