"""Real-data tests of stlit.data: every registered dataset loads with the shape and labels of shared/data/MANIFEST.md."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stlit import data
from stlit.core import InputError

# numbers from shared/data/MANIFEST.md
HER2ST_SPOTS = dict(A1=346, A2=325, A3=359, A4=343, A5=332, A6=360, B1=295, B2=270, B3=298, B4=283, B5=289, B6=277,
                    C1=176, C2=187, C3=180, C4=184, C5=181, C6=178, D1=306, D2=303, D3=301, D4=302, D5=306, D6=315,
                    E1=587, E2=572, E3=570, F1=691, F2=695, F3=712, G1=441, G2=467, G3=463, H1=613, H2=603, H3=510)


@pytest.fixture(scope="module")
def loaded(data_root):
    "Cache of load(name) with default arguments."
    cache = {}

    def get(name, **kw):
        key = (name, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = data.load(name, root=data_root, **kw)
        return cache[key]
    return get


def test_manifest_numbers_reach_the_registry():
    assert sum(HER2ST_SPOTS.values()) == 13620
    assert data._HER2ST_SPOTS == HER2ST_SPOTS


def test_every_file_on_disk_is_registered_and_every_registered_file_exists(data_root):
    registered = {Path(data.info(n).folder) / f for n in data.datasets("all") for f in data.info(n).files}
    on_disk = {p.relative_to(data_root) for p in data_root.rglob("*") if p.is_file()}
    unregistered = {p for p in on_disk - registered
                    if p.name not in ("MANIFEST.md", "README", "10_HER2+_info.xlsx", "public.yaml")
                    and not p.name.startswith(".")
                    and not str(p).startswith(("dlpfc_151673/151673/metadata", "dlpfc_151510_500genes/spatialLIBD_151510/metadata"))}
    assert not unregistered, f"files not in the registry: {sorted(map(str, unregistered))[:10]}"
    assert not registered - on_disk, f"registered but absent: {sorted(map(str, registered - on_disk))[:10]}"


@pytest.mark.parametrize("name", data.datasets())
def test_load_matches_registry(name, loaded, tmp_path):
    rec = data.info(name)
    adata = loaded(name)
    if rec.shape is not None:
        assert adata.n_obs == rec.shape[0]
        if rec.shape[1] is not None:
            assert adata.n_vars == rec.shape[1]
    xy = adata.obsm["spatial"]
    assert xy.shape == (adata.n_obs, 2) and np.isfinite(xy).all() and xy.dtype.kind == "f"
    assert adata.uns["dataset"]["name"] == name and adata.uns["dataset"]["X"] == rec.x_kind
    if rec.truth_key is not None:
        assert isinstance(adata.obs["truth"].dtype, pd.CategoricalDtype)
        assert rec.truth_key in adata.obs
        same = adata.obs["truth"].astype(object).fillna("<NA>") == adata.obs[rec.truth_key].astype(object).fillna("<NA>")
        assert same.all()
    if rec.label_counts:
        counts = adata.obs[rec.truth_key].value_counts()
        for label, n in rec.label_counts.items():
            assert counts[label] == n, (label, counts.get(label), n)
    adata.write_h5ad(tmp_path / "x.h5ad")  # uns (registry record, images) must be h5ad-writable
    import anndata as ad
    back = ad.read_h5ad(tmp_path / "x.h5ad")
    assert back.uns["dataset"]["name"] == name and back.shape == adata.shape
    if rec.x_kind == "counts":
        X = adata.layers["counts"]
        values = X.data if sp.issparse(X) else np.asarray(X)
        assert np.allclose(values, np.round(values)) and values.min() >= 0


def test_seqfish(loaded):
    a = loaded("seqfish_deeplinc")
    assert a.obs["truth"].value_counts().to_dict() == {"neuron": 1415, "glial cells": 171, "Endo": 11}
    assert a.obs["banksy_domain"].notna().all() and a.obs["banksy_domain"].nunique() == 9
    assert a.obsp["knn5_tenet"].nnz == 7985
    d = loaded("seqfish_deeplinc", truth="domain")
    assert (d.obs["truth"].astype(str) == a.obs["banksy_domain"].astype(str)).all()
    b = loaded("seqfish_banksy")
    assert b.shape == (1597, 125) and b.obs["truth"].nunique() == 9
    assert len(set(a.var_names) & set(b.var_names)) == 100


def test_merfish(loaded, data_root):
    assert loaded("merfish_deeplinc_coords").shape == (4975, 0)
    m = loaded("merfish_moffitt")
    assert m.obs["bregma"].value_counts().to_dict() == {0.26: 5584, 0.21: 5578}
    assert loaded("merfish_moffitt", bregma=0.21).n_obs == 5578
    with pytest.raises(InputError, match="bregma"):
        data.load("merfish_moffitt", root=data_root, bregma=0.5)
    s = loaded("merfish_moffitt_2000")
    assert s.shape == (2000, 156)
    assert "Ambiguous" not in set(s.obs["truth"]) and not s.var_names.str.startswith("Blank").any()
    assert (s.obs["bregma"] == 0.26).all()
    again = data.load("merfish_moffitt_2000", root=data_root)
    assert (again.obs_names == s.obs_names).all()


def test_starmap(loaded):
    v = loaded("starmap_visual_cortex")
    assert v.obs["truth"].nunique() == 12
    for section, n in {"BZ5": 1049, "BZ9": 1053, "BZ14": 1088}.items():
        a = loaded("starmap_mpfc", section=section)
        assert a.shape == (n, 166)
        assert sorted(a.obs["truth"].cat.categories) == ["1", "2", "3", "4"]
        assert a.obs["cell_type"].nunique() == 15


def test_osmfish(loaded):
    a = loaded("osmfish")
    counts = a.obs["truth"].value_counts()
    assert counts["Excluded"] == 489 and len(counts) == 12
    b = loaded("osmfish", drop_excluded=True)
    assert b.n_obs == 5328 - 489 and b.obs["truth"].nunique() == 11


def test_cosmx(loaded):
    a = loaded("cosmx_lung12")
    assert a.n_vars == 980 and a.n_obs > 100
    assert sorted(a.obs["fov"].unique()) == [2, 3]
    for fov in ("fov2", "fov3"):
        assert a.uns["spatial"][fov]["images"]["hires"].shape == (648, 672, 3)
    # every transcript assigned to a cell is counted once
    tx = pd.read_csv(data.info("cosmx_lung12").path("Lung12_tx_file.csv.gz"))
    assert a.X.sum() == (tx["cell_ID"] != 0).sum()


def _check_visium_image(adata, library_id, res="lowres"):
    entry = adata.uns["spatial"][library_id]
    img = entry["images"][res]
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    scaled = adata.obsm["spatial"] * entry["scalefactors"][f"tissue_{res}_scalef"]
    assert (scaled >= 0).all() and (scaled[:, 0] < img.shape[1]).all() and (scaled[:, 1] < img.shape[0]).all()
    assert entry["scalefactors"]["spot_diameter_fullres"] > 0


def test_dlpfc(loaded):
    a = loaded("dlpfc_151673")
    counts = a.obs["truth"].value_counts(dropna=False)
    assert len(a.obs["truth"].cat.categories) == 7 and a.obs["truth"].isna().sum() == 28
    np.testing.assert_allclose(a.uns["spatial"]["151673"]["scalefactors"]["tissue_lowres_scalef"], 0.045004502)
    _check_visium_image(a, "151673")
    # the lowres coordinates stored by spatialLIBD agree with full-res x lowres scale factor
    np.testing.assert_allclose(a.obsm["spatial"] * 0.045004502, a.obsm["spatial_lowres_spatialLIBD"], atol=0.05)
    b = loaded("dlpfc_151510")
    assert b.obs["truth"].isna().sum() == 39 and len(b.obs["truth"].cat.categories) == 7
    _check_visium_image(b, "151510")
    assert counts.sum() == 3639


def test_read_visium_on_dlpfc_folder(data_root, loaded):
    v = data.read_visium(data_root / "dlpfc_151673" / "151673")
    assert v.shape == (3639, 0)
    a = loaded("dlpfc_151673")
    np.testing.assert_array_equal(v[a.obs_names].obsm["spatial"], a.obsm["spatial"])
    assert v.uns["spatial"]["151673"]["images"]["lowres"].shape[2] == 3
    assert data.read_visium(data_root / "dlpfc_151673" / "151673", in_tissue_only=False).n_obs == 4992


def test_scanpy_can_plot(loaded):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc
    ax = sc.pl.spatial(loaded("dlpfc_151673"), color="truth", show=False)
    assert ax is not None
    for section in ("A1", "B4"):
        ax = sc.pl.spatial(loaded("her2st", section=section), color="truth", img_key="hires", show=False)
        assert ax is not None
    plt.close("all")


def test_visium_breast_cancer(loaded):
    a = loaded("visium_bc_a1")
    assert a.shape == (3798, 0) and a.obs["truth"].nunique() == 20
    assert a.obs["annot_type"].nunique() == 4
    _check_visium_image(a, "V1_Breast_Cancer_Block_A_Section_1")


# loaded in full (2,097 of the 13,620 spots): one section of each of six patients, three of them labelled
HER2ST_LOADED = ("A1", "B4", "C1", "D6", "G2", "H3")


def test_her2st_spot_counts_on_six_sections(data_root):
    "The loader's spot and gene counts and pathologist labels on six sections (all 36: the test below)."
    assert {"A1", "C1", "G2"} <= set(data._HER2ST_LABELLED) and len({s[0] for s in HER2ST_LOADED}) == 6
    for section in HER2ST_LOADED:
        n = HER2ST_SPOTS[section]
        a = data.load("her2st", root=data_root, section=section, image=False)
        assert a.n_obs == n, section
        assert 14_000 < a.n_vars < 16_500
        labelled = a.obs["truth"].notna().sum()
        assert (labelled > 0.9 * n) if section in data._HER2ST_LABELLED else labelled == 0, section


def test_her2st_spot_counts_all_sections(data_root):
    """All 36 sections without parsing the counts (5 s instead of 70 s): the spots the loader keeps, i.e. the counts
    table's spot ids ("XxY", first column) that the spot file places, number MANIFEST's count; 14,000-16,500 genes."""
    import gzip
    rec = data.info("her2st")
    for section, n in HER2ST_SPOTS.items():
        with gzip.open(rec.path(f"ST-cnts/{section}.tsv.gz", data_root), "rt") as f:
            n_genes = len(next(f).rstrip("\n").split("\t")) - 1
            ids = pd.Index([line.split("\t", 1)[0] for line in f])
        spots = pd.read_csv(rec.path(f"ST-spotfiles/{section}_selection.tsv", data_root), sep="\t")
        placed = pd.Index(spots["x"].astype(int).astype(str) + "x" + spots["y"].astype(int).astype(str))
        assert ids.is_unique and len(ids.intersection(placed.unique())) == n, section
        assert 14_000 < n_genes < 16_500, (section, n_genes)


def test_her2st_images(loaded):
    from PIL import Image
    b4 = loaded("her2st", section="B4")
    entry = b4.uns["spatial"]["B4"]
    assert entry["images"]["hires"].shape == (2000, 1869, 3)
    path = Path(entry["metadata"]["source_image_path"])
    with data.no_pixel_limit(), Image.open(path) as im:  # 92 Mpx: above Pillow's warning limit, lifted here only
        assert im.size == (9272, 9923)
    np.testing.assert_allclose(entry["scalefactors"]["tissue_hires_scalef"], 2000 / 9923)
    scaled = b4.obsm["spatial"] * entry["scalefactors"]["tissue_hires_scalef"]
    assert (scaled >= 0).all() and (scaled[:, 0] < 1869).all() and (scaled[:, 1] < 2000).all()
    a1 = loaded("her2st", section="A1")
    meta = a1.uns["spatial"]["A1"]["metadata"]
    assert meta["scale_estimated"] is True
    assert a1.obs["truth"].value_counts()["invasive cancer"] > 200


@pytest.mark.parametrize("section,on_tissue", [("A1", 0.95), ("A2", 0.9)])  # A2's fit is looser (see 01b_data_loaders)
def test_her2st_png_scale_estimate_is_reproducible(section, on_tissue, data_root):
    rec = data.info("her2st")
    img = data._read_image(rec.path(f"app-imgs/{section}_HE_image_dark.png", data_root))
    spots = pd.read_csv(rec.path(f"ST-spotfiles/{section}_selection.tsv", data_root), sep="\t")
    stored_scale, ox, oy = data._HER2ST_PNG_TRANSFORM[section]
    est = data.estimate_image_scale(spots[["pixel_x", "pixel_y"]].to_numpy(float), data.tissue_mask(img),
                                    scales=np.arange(stored_scale - 0.02, stored_scale + 0.0201, 0.0025))
    assert abs(est["scale"] - stored_scale) < 1e-6
    assert abs(est["offset_x"] - ox) < 8 and abs(est["offset_y"] - oy) < 8
    assert est["iou"] > 0.8
    # with the shifted PNG, scale x full-res lands the spots on tissue
    a = data.load("her2st", root=data_root, section=section)
    entry = a.uns["spatial"][section]
    q = np.round(a.obsm["spatial"] * entry["scalefactors"]["tissue_hires_scalef"]).astype(int)
    mask = data.tissue_mask(entry["images"]["hires"])
    assert mask[q[:, 1], q[:, 0]].mean() > on_tissue


def test_m2st(loaded):
    s = loaded("m2st_starmap")
    assert s.shape == (1207, 300) and s.obsp["adjacency"].nnz == 7838
    A = s.obsp["adjacency"]
    assert (A != A.T).nnz == 0 and A.diagonal().sum() == 0
    assert s.obsm["m2st_view1"].shape == (1207, 128) and s.obsm["m2st_view2"].shape == (1207, 64)
    assert s.obs["truth"].nunique() == 7
    bc = loaded("m2st_bc_a1")
    assert bc.shape == (3798, 200) and bc.obsp["adjacency"].nnz == 22064 and bc.obs["truth"].nunique() == 20
    # types_dic.txt order: the m2ST labels agree with the SEDR annotation of the same spots
    vis = loaded("visium_bc_a1")
    key = lambda xy: pd.Index([f"{x:.0f}_{y:.0f}" for x, y in xy])
    m2 = pd.Series(bc.obs["truth"].astype(str).to_numpy(), index=key(bc.obsm["spatial"]))
    se = pd.Series(vis.obs["truth"].astype(str).to_numpy(), index=key(vis.obsm["spatial"]))
    assert set(m2.index) == set(se.index)
    assert (m2.loc[se.index].to_numpy() == se.to_numpy()).mean() == 1.0
    d = loaded("m2st_dlpfc_151672")
    assert d.shape == (3888, 0) and d.obsp["adjacency"].nnz == 22770 and d.obs["truth"].nunique() == 5


def test_reference_tables(data_root):
    r = data.m2st_reference_results(root=data_root)
    np.testing.assert_allclose(r.loc[["151672", "breast_cancer_A1", "STARmap"], "ARI"], [0.756, 0.648, 0.610], atol=6e-4)
    assert len(r.loc["STARmap", "pred_labels"]) == 1207
    assert len(data.hggep_genes("her2")) == 785 and len(data.hggep_genes("cscc")) == 171
    assert data.hggep_reference_results("her2").shape == (34, 785)
    assert data.hggep_reference_results("cscc").shape == (14, 171)


def test_lr_pairs(data_root):
    raw = {("cellchat", "human"): 1939, ("cellchat", "mouse"): 2019, ("cellphonedb", "human"): 1680,
           ("cellphonedb", "mouse"): 1410, ("celltalkdb", "human"): 3398, ("celltalkdb", "mouse"): 2033}
    rec = data.info("lr_database")
    files = {"cellchat": "commot_cellchat/CellChatDB.ligrec.{}.csv", "cellphonedb": "commot_cellphonedb_v4/CellPhoneDBv4.0.{}.csv",
             "celltalkdb": "celltalkdb/{}_lr_pair.tsv"}
    for (db, species), n in raw.items():
        path = rec.path(files[db].format(species), data_root)
        assert len(pd.read_csv(path, sep="\t" if db == "celltalkdb" else ",")) == n
    for species in ("human", "mouse"):
        df = data.lr_pairs(species, root=data_root)
        assert set(df["database"]) == {"cellchat", "cellphonedb", "celltalkdb"}
        assert not df.duplicated(["database", "ligand", "receptor"]).any()
        for db, n in df.groupby("database").size().items():
            assert 0.99 * raw[(db, species)] <= n <= raw[(db, species)]  # a few duplicate rows dropped
        assert all(isinstance(t, tuple) and len(t) >= 1 for t in df["receptor_genes"])
    mouse = data.lr_pairs("mouse", root=data_root)
    tgfb = mouse[(mouse.database == "cellchat") & (mouse.ligand == "Tgfb1") & (mouse.receptor == "Tgfbr1_Tgfbr2")]
    assert tgfb["receptor_genes"].iloc[0] == ("Tgfbr1", "Tgfbr2") and tgfb["pathway"].iloc[0] == "TGFb"
    # the toy data's planted pairs are real CellChat mouse pairs
    toy = data.toy_cells().uns["lr_pairs"]
    cc = set(zip(mouse.ligand, mouse.receptor))
    assert all((l, r) in cc for l, r in zip(toy.ligand, toy.receptor))
    assert len(data.lr_pairs("human", databases=("ramilowski",), root=data_root)) > 2500


# ---- bad inputs ----------------------------------------------------------------------------------------------

def test_unknown_dataset_name():
    with pytest.raises(KeyError, match="Did you mean 'osmfish'"):
        data.load("osmfsh")


def test_missing_file_names_file_dataset_and_env(tmp_path, monkeypatch):
    monkeypatch.setenv("STLIT_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        data.load("starmap_visual_cortex")
    msg = str(e.value)
    assert "starmap_visualcortex_1549cells_1020genes.h5ad" in msg and "'starmap_visual_cortex'" in msg
    assert "STLIT_DATA" in msg


def test_unknown_her2st_section(data_root):
    with pytest.raises(KeyError, match="unknown her2st section"):
        data.load("her2st", root=data_root, section="J1")


def test_bad_species(data_root):
    with pytest.raises(InputError, match="species"):
        data.lr_pairs("fly", root=data_root)


def test_read_table_bad_inputs(tmp_path):
    pd.DataFrame({"g1": [1, 2, 3], "g2": [0, 1, 0]}, index=["a", "b", "c"]).to_csv(tmp_path / "e.csv")
    pd.DataFrame({"x": [0.0, np.nan, 1.0], "y": [0.0, 1.0, 2.0]}, index=["a", "b", "c"]).to_csv(tmp_path / "nan.csv")
    pd.DataFrame({"x": [0.0, 1.0], "y": [0.0, 1.0]}, index=["p", "q"]).to_csv(tmp_path / "short.csv")
    with pytest.raises(InputError, match="NaN"):
        data.read_table(tmp_path / "e.csv", tmp_path / "nan.csv")
    with pytest.raises(InputError, match="3 cells but coordinates have 2 rows"):
        data.read_table(tmp_path / "e.csv", tmp_path / "short.csv")


def test_info_lists_each_source_file_with_its_sha256():
    "info(name).checksums(): every file's original URL and SHA-256 (or, not hashed offline, its converted content's)."
    for name in data.datasets("all"):
        rec = data.info(name)
        sums = rec.checksums()
        assert list(sums.index) == rec.files
        assert sums["url"].str.startswith(("https://raw.githubusercontent.com/", "https://files.pythonhosted.org/")).all()
        assert (sums["sha256"].notna() | sums["converted_sha256"].notna()).all(), name
        assert sums.loc[sums["converted"].isna(), "sha256"].notna().all(), name  # served as is: the original's hash
        assert sums["sha256"].dropna().str.fullmatch("[0-9a-f]{64}").all()
        d = rec.as_dict()  # parallel lists ('' = none), as h5 keys cannot hold '/'
        assert len(d["sha256"]) == len(d["converted_sha256"]) == len(d["urls"]) == len(d["files"])


def test_registry_hashes_of_the_r_originals_match_their_readme(data_root):
    "The R objects' SHA-256 in the registry are those of shared/originals/README.md (and of the files there)."
    import hashlib
    import re
    readme = data_root.parent / "originals" / "README.md"
    if not readme.is_file():
        pytest.skip("shared/originals is absent")
    rows = re.findall(r"^\| `([^`]+)` \| (\S+) @ ([0-9a-f]{40}) \| [\d,]+ \| ([0-9a-f]{64}) \|", readme.read_text(), re.M)
    assert len(rows) == 8
    registry = {(s.repo, s.commit, s.remote_name(loc)): s.sha256[loc] for n in data.datasets("all")
                for s in data.info(n).sources for loc in s.sha256}
    for file, repo, commit, sha in rows:
        path = file.split("/", 1)[1]
        assert registry[(repo, commit, path)] == sha, file
        assert hashlib.sha256((readme.parent / file).read_bytes()).hexdigest() == sha
