"""Real-data tests of stlit.pp: HER2+ B4 full-resolution crops, EfficientNet-Lite0 features, DLPFC 151673 preprocessing."""
import logging

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from PIL import Image

from stlit import pp
from stlit.core import InputError

B4_IMAGE = "her2st/ST-imgs/B4_BT10737_D2_HE.jpg"
B4_SPOTS = "her2st/ST-spotfiles/B4_selection.tsv"
DLPFC = "dlpfc_151673/dlpfc151673_5000genes.h5ad"
DLPFC_SPATIAL = "dlpfc_151673/151673/spatial"


def _b4(data_root, n=None) -> ad.AnnData:
    "AnnData of the B4 spots (pixel_x = column, pixel_y = row, full-resolution) pointing at the full-res JPEG."
    image, spots = data_root / B4_IMAGE, data_root / B4_SPOTS
    if not image.exists() or not spots.exists():
        pytest.skip("her2st B4 image or spot file absent")
    sel = pd.read_csv(spots, sep="\t")
    sel = sel[sel["selected"] == 1]
    if n is not None:
        sel = sel.iloc[np.linspace(0, len(sel) - 1, n).astype(int)]
    a = ad.AnnData(X=np.zeros((len(sel), 1), dtype=np.float32),
                   obs=pd.DataFrame(index=[f"{x}x{y}" for x, y in zip(sel["x"], sel["y"])]))
    a.obsm["spatial"] = sel[["pixel_x", "pixel_y"]].to_numpy(float)
    a.uns["spatial"] = {"B4": {"images": {}, "scalefactors": {"spot_diameter_fullres": 100.0},
                               "metadata": {"source_image_path": str(image)}}}
    return a


@pytest.fixture(scope="module")
def b4(data_root):
    return _b4(data_root)


@pytest.fixture(scope="module")
def b4_image(data_root):
    "The decoded full-resolution B4 image as an array (about 0.28 GB)."
    if not (data_root / B4_IMAGE).exists():
        pytest.skip("her2st B4 image absent")
    im = pp._open_fullres(data_root / B4_IMAGE)
    arr = np.asarray(im.convert("RGB"))
    im.close()
    return arr


def test_b4_fullres_crops_are_exact_pixels(b4, b4_image):
    crops = pp.spot_crops(b4, size=112)  # HGGEP: 112 x 112 full-resolution pixels
    assert crops.shape == (b4.n_obs, 112, 112, 3) and crops.dtype == np.uint8
    for i in [0, 100, b4.n_obs - 1]:
        x, y = np.floor(b4.obsm["spatial"][i]).astype(int)
        np.testing.assert_array_equal(crops[i], b4_image[y - 56 : y + 56, x - 56 : x + 56])


def test_b4_spots_lie_on_tissue(b4, b4_image):
    "Spot crops are darker than the slide's empty corners: coordinates are (x=column, y=row) of this image."
    crops = pp.spot_crops(b4, size=112)
    corners = [b4_image[:300, :300], b4_image[:300, -300:], b4_image[-300:, :300], b4_image[-300:, -300:]]
    background = np.mean([c.mean() for c in corners])
    assert crops.mean() < background - 20, (crops.mean(), background)


def test_b4_fullres_and_downscaled_copy_agree(b4, b4_image):
    "Crops from the full-res file and from a 1/4 copy stored as 'hires' agree after resizing both to 28 px."
    small = Image.fromarray(b4_image).reduce(4)  # box-filter 1/4 copy, as a Visium hires image would be
    a = b4.copy()
    a.uns["spatial"]["B4"]["images"]["hires"] = np.asarray(small)
    a.uns["spatial"]["B4"]["scalefactors"]["tissue_hires_scalef"] = 0.25
    full = pp.spot_crops(a, size=112, out_px=28, image_key="fullres").astype(float)
    hires = pp.spot_crops(a, size=112, out_px=28, image_key="hires").astype(float)
    diff = np.abs(full - hires)
    corr = np.corrcoef(full.ravel(), hires.ravel())[0, 1]
    assert diff.mean() < 4.0 and corr > 0.97, (diff.mean(), corr)
    a.obsm["spatial"] = a.obsm["spatial"] + [4.0, 0.0]  # one hires pixel off: clearly worse, so alignment is tested
    shifted = pp.spot_crops(a, size=112, out_px=28, image_key="hires").astype(float)
    assert np.abs(full - shifted).mean() > 2 * diff.mean()


def test_b4_outside_spots_are_reported(b4):
    a = b4.copy()
    a.obsm["spatial"][:3] = a.obsm["spatial"][:3] + 20000
    with pytest.raises(InputError, match="3 of 284 spots lie outside"):
        pp.spot_crops(a, size=112)
    padded = pp.spot_crops(a[:5].copy(), size=112, on_outside="pad")
    assert (padded[:3] == 255).all()


def test_b4_efficientnet_lite0_features(data_root, b4_image):
    "ImageNet EfficientNet-Lite0 features of real crops: finite, varied, and tissue differs from empty glass."
    a = _b4(data_root, n=12)
    # at the network's training size (224 px); at the 112 px default this raw-Euclidean check does not hold on these
    # 12 spots (glass 33.4 from tissue vs 38.5 between tissue crops), see "Input size" in 02b_pp_features
    pp.image_features(a, size=112, backbone="efficientnet_lite0", weights="imagenet", input_size=224)
    feats = a.obsm["X_image"]
    assert feats.shape == (12, 1280) and feats.dtype == np.float32
    assert np.isfinite(feats).all()
    assert (feats.std(0) > 1e-3).sum() > 500  # not constant across spots
    assert len({tuple(np.round(f, 4)) for f in feats}) == 12
    glass = np.stack([b4_image[:112, :112], b4_image[-112:, -112:]])
    g = pp.cnn_features(glass, backbone="efficientnet_lite0", input_size=224)
    within = np.linalg.norm(feats[:, None] - feats[None], axis=2)[np.triu_indices(12, 1)].mean()
    across = np.linalg.norm(feats[:, None] - g[None], axis=2).mean()
    assert across > within, (across, within)


def test_imagenet_weights_missing_never_downloads(monkeypatch, tmp_path, b4):
    "weights='imagenet' with an empty torch cache raises, naming the file and URL, without touching the network."
    import torch
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)

    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    crops = np.full((2, 32, 32, 3), 128, dtype=np.uint8)
    for backbone, file in [("resnet50", "resnet50-0676ba61.pth"), ("shufflenet_v2_x0_5", "shufflenetv2_x0.5-f707e7126e.pth")]:
        with pytest.raises(FileNotFoundError, match=file) as err:
            pp.cnn_features(crops, backbone=backbone)
        assert str(tmp_path) in str(err.value) and "https://download.pytorch.org/models/" in str(err.value)


def test_weights_from_local_path(tmp_path, caplog):
    "A state dict saved to disk loads by path and reproduces the network it came from."
    import torch
    import torchvision
    torch.manual_seed(1)
    net = torchvision.models.resnet34(weights=None)
    path = tmp_path / "resnet34.pth"
    torch.save(net.state_dict(), path)
    crops = np.random.default_rng(0).integers(0, 256, size=(3, 40, 40, 3), dtype=np.uint8)
    feats = pp.cnn_features(crops, backbone="resnet34", weights=str(path), input_size=64)
    net.fc = torch.nn.Identity()
    x = torch.nn.functional.interpolate(torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255, size=(64, 64),
                                        mode="bilinear", antialias=True, align_corners=False)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in pp.input_normalisation("resnet34"))
    with torch.no_grad():
        expected = net.eval()((x - mean) / std).numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-4, atol=1e-5)
    with caplog.at_level(logging.WARNING, logger="stlit"):
        pp.cnn_features(crops[:1], backbone="resnet34", weights=None, input_size=64)
    assert "randomly initialised" in caplog.text


def test_efficientnet_lite0_recognises_imagenet_photo():
    "Bundled weights + our normalisation + pooling reproduce an ImageNet prediction (matplotlib's Grace Hopper photo)."
    import matplotlib
    import torch
    from pathlib import Path
    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not photo.exists():
        pytest.skip("matplotlib sample photo absent")
    crop = np.asarray(Image.open(photo).convert("RGB").resize((224, 224)))[None]
    feats = pp.cnn_features(crop, backbone="efficientnet_lite0", input_size=224)  # the photo at its own size
    net = pp.build_backbone("efficientnet_lite0").net
    probs = net._fc(torch.from_numpy(feats)).softmax(1)[0]
    assert int(probs.argmax()) == 652 and probs[652] > 0.3  # ImageNet class 652: 'military uniform'


@pytest.fixture(scope="module")
def dlpfc(data_root):
    path = data_root / DLPFC
    if not path.exists():
        pytest.skip("DLPFC 151673 absent")
    return ad.read_h5ad(path)


def test_preprocess_dlpfc(dlpfc):
    a = dlpfc.copy()
    X_before = a.X.copy()
    pp.preprocess(a, n_top_genes=3000, n_comps=30)
    assert (a.X != X_before).nnz == 0  # counts untouched
    assert a.layers["lognorm"].shape == (3639, 5000)
    assert int(a.var["highly_variable"].sum()) == 3000
    assert a.obsm["X_pca"].shape == (3639, 30) and np.isfinite(a.obsm["X_pca"]).all()
    assert a.varm["PCs"].shape == (5000, 30)
    ratio = a.uns["pca"]["variance_ratio"]
    assert np.all(np.diff(ratio) <= 1e-9) and 0 < ratio.sum() < 1
    # the PCs carry the cortical layers: a nearest-centroid rule on PCA separates them far above chance (1/7)
    labels = a.obs["layer_guess_reordered"]
    keep = labels.notna().to_numpy()
    Z, y = a.obsm["X_pca"][keep], labels[keep].astype(str).to_numpy()
    classes = np.unique(y)
    centroids = np.stack([Z[y == c].mean(0) for c in classes])
    pred = classes[np.argmin(((Z[:, None] - centroids[None]) ** 2).sum(2), axis=1)]
    assert (pred == y).mean() > 0.4, (pred == y).mean()


def test_preprocess_dlpfc_bad_input(dlpfc):
    a = dlpfc[:500].copy()
    with pytest.raises(InputError, match="n_comps=600"):
        pp.preprocess(a, n_comps=600)
    out = pp.preprocess(a, n_top_genes=6000, n_comps=10, copy=True)  # more HVGs than genes: all kept
    assert int(out.var["highly_variable"].sum()) == 5000
    z = a.copy()
    z.X = sp.csr_matrix(np.log1p(z.X.toarray()) - 1.0)  # scaled data where counts are expected
    with pytest.raises(InputError, match="negative values"):
        pp.preprocess(z)


def test_dlpfc_lowres_crops(data_root, dlpfc):
    "Crops from the stored lowres image (scale 0.045) with full-resolution coordinates from tissue_positions_list."
    folder = data_root / DLPFC_SPATIAL
    if not folder.exists():
        pytest.skip("DLPFC spatial folder absent")
    import json
    pos = pd.read_csv(folder / "tissue_positions_list.csv", header=None, index_col=0)
    pos = pos.loc[dlpfc.obs_names]
    a = ad.AnnData(X=np.zeros((dlpfc.n_obs, 1), dtype=np.float32), obs=dlpfc.obs[["layer_guess_reordered"]].copy())
    a.obsm["spatial"] = pos[[5, 4]].to_numpy(float)  # (x = pxl_col_in_fullres, y = pxl_row_in_fullres)
    a.uns["spatial"] = {"151673": {"images": {"lowres": np.asarray(Image.open(folder / "tissue_lowres_image.png"))},
                                   "scalefactors": json.loads((folder / "scalefactors_json.json").read_text()),
                                   "metadata": {}}}
    crops = pp.spot_crops(a, size=300, out_px=16)
    assert crops.shape == (3639, 16, 16, 3)
    # the h5ad's own obsm['spatial'] is in lowres pixels: scaled by 1/0.045 it matches the full-resolution positions
    np.testing.assert_allclose(dlpfc.obsm["spatial"] / 0.045004502, a.obsm["spatial"], rtol=0.01)
    lowres = a.uns["spatial"]["151673"]["images"]["lowres"][..., :3].astype(float)
    assert crops.mean() < lowres[:40, :40].mean() - 20  # spots are on tissue, the image corner is glass


def _stlit_data():
    try:
        from stlit import data
    except ImportError:
        pytest.skip("stlit.data is not available")
    return data


def test_with_stlit_data_her2st_b4(data_root):
    "stlit.data's B4 (full-res path + downscaled 'hires') gives crops that agree between the two images."
    data = _stlit_data()
    if not (data_root / B4_IMAGE).exists():
        pytest.skip("her2st B4 image absent")
    a = data.load("her2st", section="B4")
    full = pp.spot_crops(a, size=112, out_px=28, image_key="fullres").astype(float)
    hires = pp.spot_crops(a, size=112, out_px=28, image_key="hires").astype(float)
    assert full.shape == (a.n_obs, 28, 28, 3)
    assert np.abs(full - hires).mean() < 7.0 and np.corrcoef(full.ravel(), hires.ravel())[0, 1] > 0.97


def test_with_stlit_data_toy_visium():
    data = _stlit_data()
    if not hasattr(data, "toy_visium"):
        pytest.skip("stlit.data.toy_visium is not available")
    a = data.toy_visium(image=True)
    diameter = next(iter(a.uns["spatial"].values()))["scalefactors"]["spot_diameter_fullres"]
    crops = pp.spot_crops(a, size=diameter, out_px=32)
    assert crops.shape == (a.n_obs, 32, 32, 3) and crops.std() > 0
