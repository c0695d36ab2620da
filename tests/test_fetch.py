"""`stlit.data.fetch` through real HTTP: every registry dataset fetched from a loopback mirror, converted, and equal
to what `load` returns from the data folder; bad downloads (checksum, 404, timeout); the R converters on small objects
written by R.

The mirror (tests/_mirror.py) holds the originals: the data folder's files where they are served as they are, the R
objects of `shared/originals`, and originals rebuilt from the data folder where they are not on this machine (gzip
undone, the matrix pickled again, LF -> CR, the commot wheel zipped again). The rebuilt wheel is not PyPI's, so its
registered SHA-256 is swapped for the rebuilt one here; the CSVs taken out of it are still checked against theirs.
"""
import gzip
import hashlib
import http.server
import shutil
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import stlit.data as sd
from stlit import _data_fetch as df
from stlit.core import data_dir

from _mirror import layout_mirror, mirror, originals_dir, rebuilt_wheels, serve

DATA = data_dir()
pytestmark = pytest.mark.skipif(not (DATA / "MANIFEST.md").is_file() or not originals_dir(DATA).is_dir(),
                                reason="needs the real data folder and shared/originals")

HER2ST_SECTIONS = ("A1", "B4")  # the app PNG + pathologist labels; a full-resolution jpg
OPTIONS = {"her2st": [{"section": s} for s in HER2ST_SECTIONS],
           "starmap_mpfc": [{"section": s} for s in ("BZ5", "BZ9", "BZ14")]}
TIMES: dict = {}


@pytest.fixture(scope="module")
def fetched(tmp_path_factory):
    "Every registry dataset fetched through one loopback mirror into one data folder: (dest, mirror root)."
    pytest.importorskip("rdata")
    root, dest = tmp_path_factory.mktemp("mirror"), tmp_path_factory.mktemp("fetched")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mirror(sd.datasets("all"), root) as url, pytest.MonkeyPatch.context() as mp:
            for repo, sha in rebuilt_wheels(root).items():  # see the module docstring
                for s in (s for n in sd.datasets("all") for s in sd.info(n).sources if s.repo == repo):
                    for loc in s.sha256:
                        mp.setitem(s.sha256, loc, sha)
            for name in sd.datasets("all"):
                t0 = time.perf_counter()
                paths = sd.fetch(name, dest, mirror=url, verbose=False)
                TIMES[name] = time.perf_counter() - t0
                assert sorted(p.relative_to(dest / sd.info(name).folder).as_posix() for p in paths) == \
                    sorted(sd.info(name).files)
    print("fetch + convert (s):", {k: round(v, 1) for k, v in TIMES.items()})
    return dest, root


def _same(a, b, path="", swap=None):
    "Recursive equality of loaded values (AnnData parts, dicts, arrays, frames); strings may differ by the root folder."
    if isinstance(a, dict):
        assert sorted(a) == sorted(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            _same(a[k], b[k], f"{path}/{k}", swap)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=path)
    elif sp.issparse(a):
        assert sp.issparse(b) and a.shape == b.shape and a.dtype == b.dtype and (a != b).nnz == 0, path
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype, f"{path}: {a.dtype} vs {getattr(b, 'dtype', b)}"
        np.testing.assert_array_equal(a, b, err_msg=path)
    elif isinstance(a, str) and swap:
        assert a.replace(*swap) == b, f"{path}: {a!r} != {b!r}"
    elif isinstance(a, float) and np.isnan(a):
        assert isinstance(b, float) and np.isnan(b), path
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


def assert_same_anndata(a, b, swap=None):
    "a (fetched) equals b (data folder): shape, X, obs, var, obsm (coordinates), obsp, layers, uns (images too)."
    assert a.shape == b.shape
    _same(a.X, b.X, "X")
    assert list(a.obs_names) == list(b.obs_names) and list(a.var_names) == list(b.var_names)
    _same(a.obs, b.obs, "obs")
    _same(a.var, b.var, "var")
    for part in ("obsm", "obsp", "layers"):
        _same(dict(getattr(a, part)), dict(getattr(b, part)), part)
    _same(dict(a.uns), dict(b.uns), "uns", swap)


@pytest.mark.parametrize("name", sd.datasets())
def test_fetched_equals_data_folder(fetched, name):
    dest, _ = fetched
    for kw in OPTIONS.get(name, [{}]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            a, b = sd.load(name, root=dest, **kw), sd.load(name, **kw)
        assert_same_anndata(a, b, swap=(str(dest), str(DATA)))
        assert b.n_obs > 0 and "spatial" in a.obsm


def test_fetched_tables_equal(fetched):
    dest, _ = fetched
    for species in ("human", "mouse"):
        dbs = ("cellchat", "cellphonedb", "celltalkdb") + (("ramilowski",) if species == "human" else ())
        pd.testing.assert_frame_equal(sd.lr_pairs(species, dbs, root=dest), sd.lr_pairs(species, dbs))
    a, b = sd.m2st_reference_results(root=dest), sd.m2st_reference_results()
    _same(a.drop(columns="pred_labels"), b.drop(columns="pred_labels"))
    assert all(np.array_equal(x, y) for x, y in zip(a["pred_labels"], b["pred_labels"]))
    for ds in ("her2", "cscc"):
        assert sd.hggep_genes(ds, root=dest) == sd.hggep_genes(ds)
        pd.testing.assert_frame_equal(sd.hggep_reference_results(ds, root=dest), sd.hggep_reference_results(ds))


def test_fetched_files_same_content(fetched):
    "Every fetched file but the .h5ad has the data folder's content (.gz decompressed, .npz by member); most are byte-equal."
    dest, _ = fetched
    n_files = n_bytes_equal = 0
    for name in sd.datasets("all"):
        rec = sd.info(name)
        for f in rec.files:
            a, b = dest / rec.folder / f, DATA / rec.folder / f
            if f.endswith(".h5ad"):
                continue
            if any(s.converted for s in rec.sources if f in s.sha256):
                assert df._content_sha256(a) == df._content_sha256(b), f"{rec.folder}/{f}"
            else:  # served as is (and its SHA-256 checked while downloading)
                assert df._sha256(a) == df._sha256(b), f"{rec.folder}/{f}"
            n_files += 1
            n_bytes_equal += a.read_bytes() == b.read_bytes()
    print(f"{n_files} files with the same content, {n_bytes_equal} of them byte for byte")  # all, with this zlib
    assert n_files == 183


def test_fetch_again_is_a_no_op_and_cache(fetched):
    dest, root = fetched
    with serve(root / "nothing-here") as url:  # every download would be a 404: nothing is downloaded
        t0 = time.perf_counter()
        for name in sd.datasets("all"):
            sd.fetch(name, dest, mirror=url, verbose=False)
        assert time.perf_counter() - t0 < 5
    assert (dest / ".cache/yg2485+BayeSMART/38090b4289589f25b273c8ba1c275e53538cddbe/data/STARmap.RData").is_file()


@pytest.fixture()
def small_mirror(tmp_path):
    "A mirror of two small datasets (one file served as is; three gzipped originals)."
    return layout_mirror(tmp_path / "mirror", ["merfish_deeplinc_coords", "osmfish"])


def test_checksum_mismatch_refused(small_mirror, tmp_path):
    rec = sd.info("merfish_deeplinc_coords")
    src = rec.sources[0]
    served = small_mirror / df._cache_path(src, "coord.csv").replace("+", "/", 1)
    good = served.read_bytes()
    served.unlink()
    served.write_bytes(good.replace(b"1", b"7", 1))  # one digit changed
    found = hashlib.sha256(served.read_bytes()).hexdigest()
    with serve(small_mirror) as url, pytest.raises(df.ChecksumError) as e:
        sd.fetch("merfish_deeplinc_coords", tmp_path / "d", mirror=url, verbose=False)
    msg = str(e.value)
    print("checksum mismatch:", msg)
    assert "file 'coord.csv'" in msg and "'merfish_deeplinc_coords'" in msg
    assert f"expected {src.sha256['coord.csv']}, found {found}" in msg
    assert not any((tmp_path / "d").rglob("coord.csv*"))  # the bad download is not kept


def test_converted_checksum_mismatch_refused(small_mirror, tmp_path):
    "An original without a registered hash (osmFISH's plain text) is checked after conversion."
    served = small_mirror / "RubD/spatial-datasets/daa35aafcbf3bec828eb83f33228183ed38b30a3/data/2018_osmFISH_SScortex/raw_data/osmFISH_prep_cell_metadata.txt"
    text = served.read_bytes()
    served.write_bytes(text.replace(b"Excluded", b"Included", 1))
    with serve(small_mirror) as url, pytest.raises(df.ChecksumError) as e:
        sd.fetch("osmfish", tmp_path / "d", mirror=url, verbose=False)
    print("converted mismatch:", e.value)
    assert "converted file 'osmFISH_prep_cell_metadata.txt.gz'" in str(e.value)
    assert sd.info("osmfish").sources[0].converted_sha256["osmFISH_prep_cell_metadata.txt.gz"] in str(e.value)
    assert not (tmp_path / "d/osmfish_sscortex/osmFISH_prep_cell_metadata.txt.gz").exists()
    assert (tmp_path / "d/osmfish_sscortex/osmFISH_prep_expression.txt.gz").is_file()  # the good ones are there


def test_missing_file_404(small_mirror, tmp_path):
    rec = sd.info("osmfish")
    src = rec.sources[0]
    url_path = "RubD/spatial-datasets/daa35aafcbf3bec828eb83f33228183ed38b30a3/data/2018_osmFISH_SScortex/count_matrix/osmFISH_prep_expression.txt"
    (small_mirror / url_path).unlink()
    with serve(small_mirror) as url, pytest.raises(df.FetchError) as e:
        sd.fetch("osmfish", tmp_path / "d", mirror=url, verbose=False)
    print("404:", e.value)
    assert f"{url}/{url_path} answered HTTP 404" in str(e.value) and "dataset 'osmfish'" in str(e.value)
    assert src.url("osmFISH_prep_expression.txt.gz", url) == f"{url}/{url_path}"


class _Slow(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        time.sleep(1.5)  # longer than the client's timeout below
        try:
            super().do_GET()
        except (BrokenPipeError, ConnectionResetError):  # the client has given up, as it should
            pass

    def log_message(self, *args):
        pass


def test_timeout(small_mirror, tmp_path):
    with serve(small_mirror, handler=_Slow) as url, pytest.raises(df.FetchError) as e:
        t0 = time.perf_counter()
        sd.fetch("merfish_deeplinc_coords", tmp_path / "d", mirror=url, timeout=0.3, verbose=False)
    print("timeout:", e.value)
    assert time.perf_counter() - t0 < 1.4
    assert "timed out after 0.3 s waiting for" in str(e.value) and "/xryanglab/DeepLinc/" in str(e.value)
    assert "dataset 'merfish_deeplinc_coords'" in str(e.value)
    assert not any((tmp_path / "d").rglob("*.part"))


def test_unknown_file_and_subset(small_mirror, tmp_path):
    with pytest.raises(sd.InputError, match="not files of dataset"):
        sd.fetch("osmfish", tmp_path / "d", files=["nope.txt"])
    with serve(small_mirror) as url:
        got = sd.fetch("osmfish", tmp_path / "d", mirror=url, files="osmFISH_prep_cell_coordinates.txt.gz",
                       verbose=False)
    assert [p.name for p in got] == ["osmFISH_prep_cell_coordinates.txt.gz"]
    assert sorted(p.name for p in (tmp_path / "d/osmfish_sscortex").iterdir()) == [got[0].name]


# --- the R converters on small objects that R writes, in the originals' structures ------------------------------

R_SCRIPT = r"""
args <- commandArgs(trailingOnly = TRUE); out <- args[1]
e <- matrix(c(1.5, -0.25, 0, 2, 3.125, -1), nrow = 2, dimnames = list(c("GeneA", "GeneB"), c("cell_1", "cell_2", "cell_3")))
visualcortex <- list(expression = e,
                     locations = data.frame(sdimx = c(1.5, 2.25, 3), sdimy = c(-4, 5.5, 6)),
                     metadata = data.frame(cell_ID = c("cell_1", "cell_2", "cell_3"), domains = c("O1", "I2", "O1")),
                     spatialgenes = c("GeneB"))
save(visualcortex, file = file.path(out, "visualcortex.rda"))
hypothalamus <- list(expression = e,
                     locations = data.frame(sdimx = c(-893.69528646095985, 1, 2), sdimy = c(0.1, 0.2, 0.3),
                                            sdimz = c(0.26, 0.21, 0.26)),
                     metadata = data.frame(Cell_name = c("u1", "u2", "u3"), Cell_class = c("Inhibitory", "Astrocyte", "Inhibitory"),
                                           Neuron_cluster_ID = c("I-10", "", "I-2"), Animal_ID = c(1L, 1L, 1L),
                                           Animal_sex = "Female", Behavior = "Naive"))
save(hypothalamus, file = file.path(out, "hypothalamus.rda"))
loc <- matrix(c(19.9182404434, 27.7, 1951.6, 2969.0), nrow = 2, dimnames = list(NULL, c("x", "y")))
count <- data.frame(V1 = c(0L, 3L), V2 = c(1L, 0L), V3 = c(0L, 0L))
gene_name <- c("Aaa", "Bbb ", "Ccc")
label <- data.frame(X = c(0L, 1L), CellID = c(0L, 1L), STARmap_label = c("L2/3", "Other"))
save(loc, count, gene_name, label, file = file.path(out, "starmap.RData"))
m1 <- matrix(c(0L, 3L, 2L, 0L), nrow = 2, dimnames = list(c("Acss1", "Gad1"), c("69x4486", "93x1063")))
cnts_starmap <- list("20180417_BZ5_control" = m1)
xys_starmap <- list("20180417_BZ5_control" = data.frame(x = c(68.8637444, 92.84), y = c(4486.03, 1062.68),
                    cell = c("Smc", "eL2/3"), annotation = factor(c("2", "1")), row.names = c("69x4486", "93x1063")))
save(cnts_starmap, xys_starmap, file = file.path(out, "STARmap.RData"))
saveRDS(data.frame(lr_pair = c("A_B", "C_D"), ligand_gene_symbol = c("A", "C"), receptor_gene_symbol = c("B", "D"),
                   ligand_ensembl_gene_id = c("ENSG1", NA), evidence = c("123", "456")),
        file.path(out, "human_lr_pair.rds"))
setClass("dgCMatrix", representation(i = "integer", p = "integer", Dim = "integer", Dimnames = "list", x = "numeric", factors = "list"))
setClass("Assay", representation(counts = "dgCMatrix"))
setClass("Seurat", representation(assays = "list", meta.data = "data.frame"))
counts <- new("dgCMatrix", i = c(0L, 0L, 1L), p = c(0L, 1L, 3L), Dim = c(2L, 2L),
              Dimnames = list(c("ENSG01", "ENSG02"), c("AAAC-1", "AAAG-1")), x = c(4, 1, 7), factors = list())
meta <- data.frame(orig.ident = factor(c("SeuratProject", "SeuratProject")), nCount_RNA = c(4, 8),
                   nFeature_RNA = c(1L, 2L), row = c(50L, 3L), col = c(102L, 43L),
                   annotation = factor(c("Layer3", NA), levels = c("Layer1", "Layer3", "WM")), row.names = c("AAAC-1", "AAAG-1"))
dlpfc151510 <- new("Seurat", assays = list(RNA = new("Assay", counts = counts)), meta.data = meta)
save(dlpfc151510, file = file.path(out, "dlpfc151510.rda"))
"""


@pytest.fixture(scope="module")
def r_objects(tmp_path_factory):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed: the R converters are tested on the real originals only")
    pytest.importorskip("rdata")
    out = tmp_path_factory.mktemp("r")
    subprocess.run(["Rscript", "-e", R_SCRIPT, str(out)], check=True, capture_output=True, timeout=120)
    return out


def _h5ad(fn, original, tmp_path, **ctx):
    import anndata as ad
    target = tmp_path / ctx.get("file", "out.h5ad")
    fn(original, target, {"folder": tmp_path, "file": target.name, **ctx})
    return ad.read_h5ad(target)


def test_r_banksy_list(r_objects, tmp_path):
    a = _h5ad(df._seqfish_banksy, r_objects / "visualcortex.rda", tmp_path)
    np.testing.assert_array_equal(a.X, np.array([[1.5, -0.25], [0, 2], [3.125, -1]], np.float32))
    assert list(a.obs_names) == ["cell_1", "cell_2", "cell_3"] and list(a.var_names) == ["GeneA", "GeneB"]
    assert a.obs["domain"].tolist() == ["O1", "I2", "O1"] and list(a.obs["domain"].cat.categories) == ["I2", "O1"]
    np.testing.assert_array_equal(a.obsm["spatial"], [[1.5, -4], [2.25, 5.5], [3, 6]])
    assert list(a.uns["spatialgenes"]) == ["GeneB"] and "visualcortex.rda" in a.uns["source"]
    pd.DataFrame({"X": [2.25, 1.5], "Y": [5.5, -4.0]}).to_csv(tmp_path / "coord.csv", index=False)
    df._seqfish_domains(r_objects / "visualcortex.rda", tmp_path / "d.csv", {"folder": tmp_path})
    assert (tmp_path / "d.csv").read_text() == "Cell_ID,X,Y,banksy_cell_ID,domain\n1,2.25,5.5,cell_2,I2\n2,1.5,-4.0,cell_1,O1\n"


def test_r_moffitt(r_objects, tmp_path):
    a = _h5ad(df._moffitt, r_objects / "hypothalamus.rda", tmp_path)
    assert sp.issparse(a.X) and a.X.dtype == np.float32 and a.shape == (3, 2)
    assert a.obs["banksy_sdimx"].iloc[0] == -893.69528646096  # 15 significant digits, as R's text output
    assert a.obs["Neuron_cluster_ID"].tolist() == ["I-10", "nan", "I-2"]
    assert list(a.obs["Neuron_cluster_ID"].cat.categories) == ["I-2", "I-10", "nan"]  # natural order
    assert a.obs["bregma"].tolist() == [0.26, 0.21, 0.26] and a.obs["Animal_ID"].tolist() == ["1"] * 3


def test_r_starmap(r_objects, tmp_path):
    a = _h5ad(df._starmap_vc, r_objects / "starmap.RData", tmp_path)
    assert list(a.var_names) == ["Aaa", "Bbb", "Ccc"] and list(a.obs_names) == ["cell_0", "cell_1"]
    np.testing.assert_array_equal(a.X.toarray(), [[0, 1, 0], [3, 0, 0]])
    assert a.obs["STARmap_label"].tolist() == ["L2/3", "Other"] and a.obs["CellID"].dtype == np.int64
    np.testing.assert_array_equal(a.obsm["spatial"], [[19.9182404434, 1951.6], [27.7, 2969.0]])
    b = _h5ad(df._starmap_mpfc, r_objects / "STARmap.RData", tmp_path, file="starmap_mpfc_20180417_BZ5_control.h5ad")
    assert list(b.obs_names) == ["69x4486", "93x1063"] and list(b.var_names) == ["Acss1", "Gad1"]
    np.testing.assert_array_equal(b.X.toarray(), [[0, 3], [2, 0]])
    assert b.obs["layer_domain"].tolist() == ["2", "1"] and b.obs["cell_type"].tolist() == ["Smc", "eL2/3"]


def test_r_celltalk_rds(r_objects, tmp_path):
    df._celltalk(r_objects / "human_lr_pair.rds", tmp_path / "t.tsv", {})
    assert (tmp_path / "t.tsv").read_text() == (
        "lr_pair\tligand_gene_symbol\treceptor_gene_symbol\tligand_ensembl_gene_id\tevidence\n"
        "A_B\tA\tB\tENSG1\t123\nC_D\tC\tD\tNA\t456\n")


def test_r_seurat_s4(r_objects, tmp_path):
    a = _h5ad(df._dlpfc151510, r_objects / "dlpfc151510.rda", tmp_path)
    assert list(a.obs_names) == ["AAAC-1", "AAAG-1"] and a.obs.index.name == "barcode"
    assert list(a.var_names) == ["ENSG01", "ENSG02"]
    np.testing.assert_array_equal(a.X.toarray(), [[4, 0], [1, 7]])  # genes x cells dgCMatrix, transposed
    assert a.obs["annotation"].tolist()[0] == "Layer3" and pd.isna(a.obs["annotation"].iloc[1])
    assert list(a.obs["annotation"].cat.categories) == ["Layer1", "Layer3", "WM"]
    np.testing.assert_array_equal(a.obsm["spatial"], [[50, 102], [3, 43]])


def test_load_fetches_missing_files_when_asked(small_mirror, tmp_path, monkeypatch):
    "load(fetch=True) or $STLIT_FETCH=1 (the Colab cell sets it) fetches missing files (from $STLIT_MIRROR) first."
    dest = tmp_path / "data"
    monkeypatch.delenv("STLIT_FETCH", raising=False)
    with pytest.raises(FileNotFoundError, match="fetch"):
        sd.load("osmfish", root=dest)
    with serve(small_mirror) as url:
        monkeypatch.setenv("STLIT_MIRROR", url)
        monkeypatch.setenv("STLIT_FETCH", "1")
        got = sd.load("osmfish", root=dest)
        monkeypatch.delenv("STLIT_FETCH")
        got2 = sd.load("merfish_deeplinc_coords", root=dest, fetch=True)
    want, want2 = sd.load("osmfish"), sd.load("merfish_deeplinc_coords")
    assert got.shape == want.shape and (got.obs_names == want.obs_names).all()
    np.testing.assert_array_equal(got.obsm["spatial"], want.obsm["spatial"])
    assert got2.shape == want2.shape
    np.testing.assert_array_equal(got2.obsm["spatial"], want2.obsm["spatial"])
