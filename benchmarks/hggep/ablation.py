"""HGGEP's Fig. 3 ablation on one leak-free fold: the modules added in turn (CBAM, ViT, HAM, LSTM, then GEM).

Run from the repository root, one thread, in the background:

    nice -n 19 env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nohup .venv/bin/python \
        benchmarks/hggep/ablation.py [EPOCHS] >> benchmarks/results/hggep/ablation.log 2>&1 &

Fold: leak-free, C6 held out, trained on B4 + C2-C5 for a fixed number of epochs (default 20, fewer than the default
profile's 40: CPU budget; the number is in every row). Every variant goes through `stlit.hggep.cross_validate`
(img2expr's folds, target and per-gene r). Variants, each adding one module to the previous one:

    base (stage heads + gene head) → +CBAM → +ViT → +HAM → +LSTM (= the default CPU profile) → +GEM

GEM sits in front of the trunk, so with GEM the (still frozen) trunk runs on every crop at every epoch instead of
once: by far the slowest variant, run last. benchmarks/results/hggep/ablation.csv is rewritten after each variant,
with the machine and date; resumable: variants already in it at the same number of epochs are skipped.
"""
import os, platform, sys, time
from pathlib import Path

import torch

torch.set_num_threads(1)
import pandas as pd

import stlit.hggep as hg
import stlit.img2expr as ie
from stlit.data import load

epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
out = Path("benchmarks/results/hggep")
VARIANTS = [("base", dict(cbam=False, vit=False, ham=False, lstm=False)),
            ("+CBAM", dict(cbam=True, vit=False, ham=False, lstm=False)),
            ("+ViT", dict(cbam=True, vit=True, ham=False, lstm=False)),
            ("+HAM", dict(cbam=True, vit=True, ham=True, lstm=False)),
            ("+LSTM (default)", dict(cbam=True, vit=True, ham=True, lstm=True)),
            ("+GEM", dict(cbam=True, vit=True, ham=True, lstm=True, gem=True))]

csv = out / "ablation.csv"
rows = pd.read_csv(csv).to_dict("records") if csv.exists() else []
rows = [r for r in rows if int(r["epochs"]) == epochs]  # another number of epochs: measured again
done = {r["variant"] for r in rows}
todo = [(name, fields) for name, fields in VARIANTS if name not in done]
print(f"{epochs} epochs; done already: {sorted(done)}; to do: {[n for n, _ in todo]}", flush=True)
cpu_name = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
machine = f"{platform.node()}: {os.cpu_count()} cores ({cpu_name}), torch {torch.__version__} 1 thread, shared with other jobs"

data = [load("her2st", section=s) for s in ["B4", "C2", "C3", "C4", "C5", "C6"]] if todo else []
top = ie.most_variable_genes([ie.expression_target(a) for a in data], n=50) if todo else []
for name, fields in todo:
    cpu, load_start = time.process_time(), os.getloadavg()[0]
    table = hg.cross_validate(data, protocol="leak_free", test_sections=["C6"], seed=0, device="cpu", verbose=False,
                              epochs=epochs, **fields)
    s = ie.summarise(table, top_genes=top).iloc[0].to_dict()
    rows.append({"variant": name, **{k: s[k] for k in ("section", "mean_pcc", "median_pcc", "mean_pcc_top")},
                 "epochs": epochs, "cpu_seconds": round(time.process_time() - cpu, 1),
                 "load_at_start": round(load_start, 2), "fields": repr(fields), "machine": machine,
                 "date": time.strftime("%Y-%m-%d", time.gmtime())})
    order = [n for n, _ in VARIANTS]
    pd.DataFrame(sorted(rows, key=lambda r: order.index(r["variant"]))).to_csv(csv, index=False)
    print(rows[-1], flush=True)
