"""Network input size of `stlit.pp` image features: 112 vs 160 vs 224 px, speed and expression-prediction accuracy.

Why: `cnn_features`/`image_features` resize every crop to `input_size` before the CNN. HGGEP cuts 112 x 112
full-resolution pixels per HER2+ spot, so 112 px is the crop's own resolution and 224 px is a 2x upsampling that costs
about 4x the multiply-adds. This script measures whether the extra cost buys anything.

Data: HER2+ (Andersson et al. 2021) patient C sections C2-C6 and patient B section B4, the sections with
full-resolution H&E here. Crops: `stlit.pp.spot_crops(adata, size=112)` (exact full-resolution pixels, no resampling).
Features: `stlit.pp.cnn_features(crops, backbone='efficientnet_lite0', weights='imagenet', input_size=S)`, frozen
ImageNet EfficientNet-Lite0 (the one backbone with weights offline), global-average-pooled, 1280-d.
Targets: the 785 HGGEP genes (`stlit.data.hggep_genes('her2')`), counts normalised to the median library size of the
section and log1p (`stlit.pp.normalize_log(target_sum=None)`).
Model: standardise features (training fold statistics) -> ridge regression, alpha chosen by leave-one-out on the
training fold only (`RidgeCV`, alphas 10^0..10^5); the same for every input size.
Protocols: (a) `patient_C_loso`: train on four of C2-C6, test on the fifth (5 folds);
(b) `patient_B4_from_C`: train on C2-C6, test on B4 (a new patient);
(c) `within_C6_5fold`: 5-fold CV over the spots of C6 (KFold, shuffle, seed 0).
Metric: Pearson r per gene on the held-out spots; genes constant on the held-out spots are excluded (counted);
mean and median over the scored genes. Reference row: ridge on each crop's RGB mean and s.d. (6 numbers).
Speed: `cnn_features` wall time on the first 200 C6 crops (median of 3), 1 torch thread, batch 64, CPU.

Run: `python benchmarks/image_input_size.py` -> prints tables, writes `benchmarks/results/image_input_size.csv`.
"""
import os
import time
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

SIZES = (112, 160, 224)
CROP = 112  # full-resolution pixels per crop (HGGEP)
SECTIONS_C = ("C2", "C3", "C4", "C5", "C6")
OUT = Path(__file__).resolve().parent / "results" / "image_input_size.csv"


def pearson_per_gene(y_true, y_pred):
    "Pearson r per column; columns constant in y_true (or y_pred) are NaN."
    import numpy as np
    yt, yp = y_true - y_true.mean(0), y_pred - y_pred.mean(0)
    den = np.sqrt((yt**2).sum(0) * (yp**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (yt * yp).sum(0) / den
    return np.where(den > 1e-12, r, np.nan)


def ridge_predict(X_train, Y_train, X_test):
    from sklearn.linear_model import RidgeCV
    from sklearn.preprocessing import StandardScaler
    import numpy as np
    sc = StandardScaler().fit(X_train)
    model = RidgeCV(alphas=np.logspace(0, 5, 11)).fit(sc.transform(X_train), Y_train)
    return model.predict(sc.transform(X_test)), float(model.alpha_)


def score(y_true, y_pred) -> dict:
    import numpy as np
    r = pearson_per_gene(y_true, y_pred)
    ok = np.isfinite(r)
    return {"mean_pcc": float(np.mean(r[ok])), "median_pcc": float(np.median(r[ok])), "n_genes_scored": int(ok.sum()),
            "n_genes_excluded": int((~ok).sum())}


def main():
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.model_selection import KFold
    from stlit import data, pp

    torch.set_num_threads(1)
    genes = data.hggep_genes("her2")
    sections = SECTIONS_C + ("B4",)
    crops, expr = {}, {}
    t0 = time.perf_counter()
    for s in sections:
        a = data.load("her2st", section=s)
        pp.normalize_log(a, target_sum=None)
        expr[s] = np.asarray(a[:, genes].layers["lognorm"].toarray(), dtype=np.float64)
        crops[s] = pp.spot_crops(a, size=CROP, image_key="fullres")
    crop_s = time.perf_counter() - t0
    n_spots = sum(len(c) for c in crops.values())
    print(f"loaded and cropped {n_spots} spots of {len(sections)} sections in {crop_s:.1f} s")

    # speed: the same 200 crops at each input size
    speed = {}
    bench = crops["C6"][:200]
    for size in SIZES:
        pp.cnn_features(bench[:8], backbone="efficientnet_lite0", input_size=size)  # warm-up (weights loaded, kernels chosen)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            pp.cnn_features(bench, backbone="efficientnet_lite0", input_size=size, batch_size=64)
            times.append(time.perf_counter() - t)
        speed[size] = 100 * float(np.median(times)) / len(bench)
        print(f"input {size}: {speed[size]:.2f} s per 100 crops (median of 3, 1 thread)")

    feats = {("rgb", None): {s: np.concatenate([c.reshape(len(c), -1, 3).mean(1), c.reshape(len(c), -1, 3).std(1)], 1)
                             for s, c in crops.items()}}
    for size in SIZES:
        feats[("efficientnet_lite0", size)] = {s: pp.cnn_features(c, backbone="efficientnet_lite0", input_size=size)
                                               for s, c in crops.items()}

    rows = []
    for (name, size), F in feats.items():
        base = {"features": name, "input_size": size,
                "s_per_100_crops": speed.get(size, np.nan) if name != "rgb" else np.nan}
        for test in SECTIONS_C:  # (a) leave one C section out
            train = [s for s in SECTIONS_C if s != test]
            pred, alpha = ridge_predict(np.concatenate([F[s] for s in train]), np.concatenate([expr[s] for s in train]),
                                        F[test])
            rows.append({**base, "protocol": "patient_C_loso", "test": test, "alpha": alpha, **score(expr[test], pred)})
        pred, alpha = ridge_predict(np.concatenate([F[s] for s in SECTIONS_C]),  # (b) new patient
                                    np.concatenate([expr[s] for s in SECTIONS_C]), F["B4"])
        rows.append({**base, "protocol": "patient_B4_from_C", "test": "B4", "alpha": alpha, **score(expr["B4"], pred)})
        X, Y = F["C6"], expr["C6"]  # (c) within one section
        pred = np.zeros_like(Y)
        for tr, te in KFold(5, shuffle=True, random_state=0).split(X):
            pred[te], alpha = ridge_predict(X[tr], Y[tr], X[te])
        rows.append({**base, "protocol": "within_C6_5fold", "test": "C6", "alpha": np.nan, **score(Y, pred)})

    df = pd.DataFrame(rows)
    OUT.parent.mkdir(exist_ok=True)
    df.to_csv(OUT, index=False)
    summary = df.groupby(["protocol", "features", "input_size"], dropna=False)[["mean_pcc", "s_per_100_crops"]].mean()
    print(summary.round(4).to_string())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
