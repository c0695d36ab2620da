"""Why the image-only IE-HERCL variant scores ARI 0 on HER2+ A1 with the speed defaults: the same fit with the CNN
input side and the epoch budget of the earlier defaults, and how many spots each final label holds (a diagnostic:
nothing here chooses a default; ARI against the pathologist labels is reported).
Usage:  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/iehercl_image_only_diag.py
Writes benchmarks/results/iehercl_image_only_diag.csv (about 25 CPU s).
"""
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parent / "results" / "iehercl_image_only_diag.csv"
VARIANTS = [("default (CNN input from the crop: 32 px; 60 epochs)", {}),
            ("112-px CNN input, 60 epochs", {"image_input_size": 112}),
            ("earlier defaults: 112-px CNN input, 100 epochs (70 pretrain)",
             {"image_input_size": 112, "n_epochs": 100, "pretrain_epochs": 70})]


def main():
    import torch
    torch.set_num_threads(1)
    import stlit
    from stlit import iehercl
    from stlit.metrics import cluster_scores
    a = stlit.data.load("her2st", section="A1")
    truth = a.obs["truth"].astype(str)
    rows = []
    for label, kw in VARIANTS:
        cpu = time.process_time()
        r = iehercl.fit(a.copy(), 6, modality="image", seed=0, verbose=False, device="cpu", key_added="ie", **kw)
        s = cluster_scores(truth, r.labels)
        rows.append(dict(dataset="her2st_a1", variant=label, fields=json.dumps(kw), seed=0, ari=s["ari"], nmi=s["nmi"],
                         cluster_sizes=" ".join(map(str, sorted(np.unique(r.labels, return_counts=True)[1])[::-1])),
                         cnn_input_px=r.inputs.get("cnn_input_px"), cpu_s=round(time.process_time() - cpu, 1)))
        print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(OUT, index=False)


if __name__ == "__main__":
    main()
