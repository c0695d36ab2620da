"""IE-HERCL on the CosMx Lung12 fields (GiottoData mini: 2 cropped FOVs, 120 segmented cells, 980 targets; no labels).

The pipeline as the appendix describes it for CosMx: a 120-px crop around each cell (CosMx pixels, 0.18 µm: about
22 µm) cut from its own field's composite image (`stlit.pp.image_features(..., library_key='library_id')`, the
frame and y flip set by the loader), EfficientNet-Lite0 ImageNet features, then `iehercl.fit` with those features as
`image_rep`, no neighbour refinement (single cells, as the appendix says). K = 4 is a display choice (no truth
exists here): nothing is scored. Written: the per-cell result (field, coordinates, domain, cross-modal weights β)
and one summary row (CPU and wall seconds per stage, the machine's load).
Usage:  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/iehercl_cosmx.py
Writes benchmarks/results/iehercl_cosmx_cells.csv and iehercl_cosmx.csv.
"""
import datetime
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
K, CROP_PX, SEED = 4, 120, 0


def main():
    import torch
    torch.set_num_threads(1)
    import stlit
    from stlit import iehercl, pp
    a = stlit.data.load("cosmx_lung12")
    load0 = os.getloadavg()[0]
    tic, cpu = time.perf_counter(), time.process_time()
    pp.image_features(a, CROP_PX, library_key="library_id", key_added="X_cnn", device="cpu", seed=SEED)
    feat_wall, feat_cpu = time.perf_counter() - tic, time.process_time() - cpu
    res = iehercl.fit(a, K, image_rep="X_cnn", refine=False, seed=SEED, verbose=False, device="cpu")
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    w = res.modality_weights
    cells = pd.DataFrame({"cell": a.obs_names, "fov": a.obs["fov"].to_numpy(), "x_global": a.obsm["spatial"][:, 0],
                          "y_global": a.obsm["spatial"][:, 1], "domain": res.labels.astype(int),
                          "gene_weight": w["gene"].to_numpy(), "image_weight": w["image"].to_numpy()})
    cells.to_csv(HERE / "results" / "iehercl_cosmx_cells.csv", index=False)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True)
    lib = a.uns["spatial"]["fov2"]["images"]["hires"]
    row = dict(dataset="cosmx_lung12 (2 FOVs)", n_cells=a.n_obs, n_genes=a.n_vars, K=K, crop_px=CROP_PX,
               image_px=f"{lib.shape[1]}x{lib.shape[0]}", image_dim=a.obsm["X_cnn"].shape[1],
               gene_input=res.inputs["gene_input"], modality=res.inputs["modality"], epochs=res.config.n_epochs,
               features_cpu_s=round(feat_cpu, 1), features_wall_s=round(feat_wall, 1),
               **{f"{k}{cpu}_s": round(v, 1) for k in res.seconds  # inputs_s, inputs_cpu_s, graphs_s, ...
                  for cpu, v in (("", res.seconds[k]), ("_cpu", res.cpu_seconds[k]))},
               cpu_s=round(cpu, 1), wall_s=round(wall, 1), image_weight_mean=round(float(w["image"].mean()), 4),
               image_weight_sd=round(float(w["image"].std()), 4), image_weight_min=round(float(w["image"].min()), 4),
               image_weight_max=round(float(w["image"].max()), 4), load_1min_start=round(load0, 1),
               load_1min_end=round(os.getloadavg()[0], 1), commit=commit.stdout.strip(),
               date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M+00:00"))
    pd.DataFrame([row]).to_csv(HERE / "results" / "iehercl_cosmx.csv", index=False)
    print(row)


if __name__ == "__main__":
    main()
