"""Does `stlit.pp`'s alignment check tell a mirrored or mis-scaled image from the right one, on real sections?

For every real section with an image here (HER2+ A1, A2, B4, C2-C6; DLPFC 151673 and 151510, Visium breast cancer
A1, lowres), the spot coordinates are moved by each of the seven alternatives of `stlit.pp._ALIGNMENTS` (mirrored in
y or x, x/y swapped, scaled by 0.5, 2, 0.3, 3.3) as a planted error, plus no error. For each case the check scores
the coordinates as given and the seven alternatives (Dice between the tissue mask and the spot discs) and raises when
the best alternative reaches 1.2 x the given Dice and 0.5 itself and puts 10 points more spot centres on tissue
(`stlit.pp._likely_misalignment`). The same on subsets of each section (the first 30/60/120 spots, 30/60/120 drawn at
random with seed 0, the 40 top and 40 bottom spots), since users crop parts of sections too. Reported per case: the
given Dice, the best alternative and its Dice, their ratio, and whether `spot_crops` would refuse the image.

Run: `python benchmarks/image_alignment.py` -> prints a summary, writes `benchmarks/results/image_alignment.csv`.
"""
import os
from pathlib import Path

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

OUT = Path(__file__).resolve().parent / "results" / "image_alignment.csv"
CASES = [("her2st", {"section": s}) for s in ("A1", "A2", "B4", "C2", "C3", "C4", "C5", "C6")] + [
    ("dlpfc_151673", {}), ("dlpfc_151510", {}), ("visium_bc_a1", {})]


def main():
    import numpy as np
    import pandas as pd
    from stlit import data, pp

    rows = []
    for name, kw in CASES:
        adata = data.load(name, **kw)
        image = pp.spot_image(adata)
        thumb, factor = pp._thumbnail(image)
        image.close()
        mask = pp._tissue_mask(thumb)
        h, w = mask.shape
        xy = adata.obsm["spatial"] * image.scale * factor
        rng = np.random.default_rng(0)
        by_row = np.argsort(xy[:, 1], kind="stable")
        subsets = {"all": np.arange(len(xy)), **{f"first {k}": np.arange(k) for k in (30, 60, 120)},
                   **{f"random {k}": rng.choice(len(xy), k, replace=False) for k in (30, 60, 120)},
                   "top 40": by_row[:40], "bottom 40": by_row[-40:]}
        for subset, idx in subsets.items():
            for planted, move in pp._ALIGNMENTS.items():
                scores = pp._alignment_scores(mask, move(xy[idx], h, w))
                given = scores["as given"]
                best = max((k for k in scores if k != "as given"), key=lambda k: scores[k][1])
                rows.append({"dataset": name + kw.get("section", ""), "image": image.key, "spots": subset,
                             "planted_error": planted, "given_on_tissue": given[0], "given_dice": given[1],
                             "best_alternative": best, "best_on_tissue": scores[best][0], "best_dice": scores[best][1],
                             "ratio": scores[best][1] / max(given[1], 1e-12),
                             "refused": pp._likely_misalignment(scores) is not None})
    df = pd.DataFrame(rows)
    OUT.parent.mkdir(exist_ok=True)
    df.to_csv(OUT, index=False)
    kind = np.where(df.planted_error == "as given", "none", np.where(df.planted_error.str.startswith("scaled"),
                                                                     "rescaled", "mirrored/swapped"))
    print(df.assign(kind=kind, whole=np.where(df.spots == "all", "whole section", "subset")).groupby(["whole", "kind"]).agg(cases=("refused", "size"), refused=("refused", "sum"),
                                                   min_ratio=("ratio", "min"), max_ratio=("ratio", "max")).to_string())
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
