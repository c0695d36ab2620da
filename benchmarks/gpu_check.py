"""GPU check: each method's fit on real data on `cuda` and on the CPU (torch 1 thread), timed, one CSV row per run.

Run on the lent GPU machine by benchmarks/gpu/device_check.sh (see that file for the `run` call). The CPU rows use one
torch thread so that they compare with the book's CPU-second numbers; epochs are capped (and the cap is the same on
both devices) so that the whole script stays under ~150 s there; the `epochs` and `settings` columns say what ran.

    method   dataset                       what runs (same on both devices)
    m2st     dlpfc_151673 (3,639 spots)    m2st.fit(adata, 7): the default config (early stopping), ARI vs the layers
    magnet   seqfish_deeplinc (1,597 cells) magnet.prepare once (reduced: 200 LR permutations, covariance GRN, one
                                           walk per gene; CPU, not timed per device), then magnet.fit leak_free,
                                           --magnet-epochs epochs; AP on the held-out pairs
    hggep    her2st C2+C3 -> C6            one leak-free fold (held-out section of the same patient): hggep.fit on C2 and
                                           C3 (trunk efficientnet_lite0 ImageNet, frozen), --hggep-epochs epochs, then
                                           predict C6; mean gene Pearson r over the paper's HER2+ genes
    iehercl  dlpfc_151673                  iehercl.fit(adata, 7): default settings, epochs capped by --iehercl-epochs
                                           (pretraining capped in proportion: 40/60 of it); ARI vs the layers

Columns: method, dataset, device, seconds (wall), cpu_seconds (this process's CPU time, all threads), peak_mib (cuda
rows: torch.cuda.max_memory_allocated during the run; CPU rows: empty), metric, value, epochs, settings, n_obs,
torch_threads, torch, gpu_name, date, error. Rows are written as they finish, so a run stopped by a time limit keeps
the rows it had. Inputs are loaded once per method, then every method runs on the GPU, then on the CPU (so a time
limit cuts CPU rows first; --cpu-budget-s skips them on purpose). The first CUDA call (context start) is made before
any timing.

Usage:  python benchmarks/gpu_check.py [--out gpu_check.csv] [--devices cuda,cpu] [--methods m2st,magnet,hggep,iehercl]
        [--quick]   # tiny epochs: a dry run of the script itself, not a measurement
Without --out and without CUDA (benchmarks/run_all.py on the CPU machine) it prints that it skipped and exits 0.
"""
import argparse
import csv
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # stlit from this working tree

COLUMNS = ["method", "dataset", "device", "seconds", "cpu_seconds", "peak_mib", "metric", "value", "epochs", "settings",
           "n_obs", "torch_threads", "torch", "gpu_name", "date", "error"]


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(device, fn):
    "(result, wall s, process CPU s, peak MiB on the GPU or None)"
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    _sync(device)
    c, w = time.process_time(), time.perf_counter()
    out = fn()
    _sync(device)
    wall, cpu = time.perf_counter() - w, time.process_time() - c
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return out, wall, cpu, peak


def _ari(truth, labels):
    from stlit.metrics import cluster_scores
    return cluster_scores(np.asarray(truth, dtype=object), labels)["ari"]


# Each runner: (dataset, settings text, epochs, make(device) -> (metric, value, n_obs)). Loading is outside the timing.

def m2st_runner(quick):
    from stlit import m2st
    from stlit.data import load
    base = load("dlpfc_151673")
    fields = dict(n_epochs=3, n_init=1) if quick else {}

    def run(device):
        a = base.copy()
        res = m2st.fit(a, 7, seed=0, device=device, verbose=False, **fields)
        return res, a
    def score(out):
        res, a = out
        return "ari", _ari(a.obs["truth"], res.labels), a.n_obs, len(res.history)
    return "dlpfc_151673", f"m2st.fit(adata, 7) defaults{' ' + str(fields) if fields else ''}", run, score


def magnet_runner(quick, epochs):
    from stlit import magnet
    from stlit.data import load
    base = load("seqfish_deeplinc")
    prep = dict(lr_permutations=20 if quick else 200, grn_method="covariance", node2vec_walks_per_node=1)
    inputs = magnet.prepare(base, seed=0, **prep)
    epochs = 2 if quick else epochs

    def run(device):
        a = base.copy()
        return magnet.fit(a, inputs=inputs, seed=0, device=device, epochs=epochs, eval_every=epochs,
                          protocol="leak_free", verbose=False), a
    def score(out):
        res, a = out
        return "ap_leak_free", res.scores["ap"], a.n_obs, len(res.history)
    return ("seqfish_deeplinc", f"prepare {prep} (once, CPU, untimed); fit leak_free epochs={epochs}", run, score)


def hggep_runner(quick, epochs):
    import stlit.hggep as hg
    from stlit.data import hggep_genes, load
    from stlit.metrics import gene_pearson
    train = [load("her2st", section=s) for s in ("C2", "C3")]
    test = load("her2st", section="C6")
    genes = hggep_genes("her2")
    epochs = 1 if quick else epochs
    fields = dict(trunk="efficientnet_lite0", epochs=epochs)

    def run(device):
        model = hg.fit(train, genes=genes, seed=0, device=device, verbose=False, **fields)
        t = test.copy()
        hg.predict(model, t)
        return model, t
    def score(out):
        model, t = out
        g = gene_pearson(t.obsm["hggep"], hg.expression(t, model.genes, "C6")[0], gene_names=model.genes)
        return "mean_gene_pcc_C6", g.mean, t.n_obs, len(model.history)
    return ("her2st C2+C3 -> C6", f"hggep.fit({fields}) leak-free fold, 785 HER2+ genes; predict C6 timed in", run,
            score)


def iehercl_runner(quick, epochs):
    from stlit import iehercl
    from stlit.data import load
    base = load("dlpfc_151673")
    epochs = 2 if quick else epochs
    fields = dict(n_epochs=epochs, pretrain_epochs=round(epochs * 40 / 60))

    def run(device):
        a = base.copy()
        return iehercl.fit(a, 7, seed=0, device=device, verbose=False, **fields), a
    def score(out):
        res, a = out
        return "ari", _ari(a.obs["truth"], res.labels), a.n_obs, len(res.history)
    return "dlpfc_151673", f"iehercl.fit(adata, 7) defaults but {fields}", run, score


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=None,
                   help="CSV path (default: benchmarks/results/gpu_check.csv, only where CUDA is available)")
    p.add_argument("--devices", default="cuda,cpu" if torch.cuda.is_available() else "cpu")
    p.add_argument("--methods", default="m2st,magnet,hggep,iehercl")
    p.add_argument("--quick", action="store_true", help="tiny epochs: a dry run of the script, not a measurement")
    p.add_argument("--cpu-threads", type=int, default=1)
    p.add_argument("--magnet-epochs", type=int, default=60)
    p.add_argument("--hggep-epochs", type=int, default=5)
    p.add_argument("--iehercl-epochs", type=int, default=30)
    p.add_argument("--cpu-budget-s", type=float, default=1e9,
                   help="skip the remaining CPU runs once the script has run this long (a row with error='skipped')")
    args = p.parse_args(argv)
    if args.out is None:  # benchmarks/run_all.py runs every script without arguments
        if not torch.cuda.is_available():
            print("[gpu_check] skipped: no CUDA here and no --out (the CPU-only rows would replace the GPU results)")
            return
        args.out = ROOT / "benchmarks" / "results" / "gpu_check.csv"
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    if any(d.startswith("cuda") for d in devices):
        if not torch.cuda.is_available():
            sys.exit("--devices names cuda but torch.cuda.is_available() is False")
        torch.zeros(1, device="cuda").sum().item()  # context start, outside every timing
    torch.set_num_threads(args.cpu_threads)
    gpu_name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else ""
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    makers = dict(m2st=lambda: m2st_runner(args.quick), magnet=lambda: magnet_runner(args.quick, args.magnet_epochs),
                  hggep=lambda: hggep_runner(args.quick, args.hggep_epochs),
                  iehercl=lambda: iehercl_runner(args.quick, args.iehercl_epochs))
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        setups = {}
        for method in [m.strip() for m in args.methods.split(",") if m.strip()]:
            t0 = time.perf_counter()
            try:  # data loading (and MAGNET's prepare) once, outside every timing
                setups[method] = makers[method]()
                print(f"[gpu_check] {method}: inputs ready in {time.perf_counter() - t0:.1f} s", flush=True)
            except Exception as e:  # noqa: BLE001 - a broken loader is reported as a row, the other methods still run
                traceback.print_exc()
                writer.writerow(dict(method=method, error=f"setup: {type(e).__name__}: {e}"[:300]))
                f.flush()
        for device in devices:  # every method on the GPU first, then on the CPU
            for method, (dataset, settings, run, score) in setups.items():
                row = dict(method=method, dataset=dataset, device=device, settings=settings,
                           torch_threads=torch.get_num_threads(), torch=torch.__version__, gpu_name=gpu_name,
                           date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), error="")
                if device == "cpu" and time.perf_counter() - start > args.cpu_budget_s:
                    row["error"] = f"skipped: script past --cpu-budget-s {args.cpu_budget_s:.0f}"
                else:
                    try:
                        out, wall, cpu, peak = timed(device, lambda: run(device))
                        metric, value, n_obs, n_epochs = score(out)
                        row.update(seconds=round(wall, 2), cpu_seconds=round(cpu, 2), metric=metric,
                                   value=round(float(value), 4), epochs=n_epochs, n_obs=n_obs,
                                   peak_mib=round(peak, 1) if peak is not None else "")
                    except Exception as e:  # noqa: BLE001 - recorded in the row, the next run still happens
                        traceback.print_exc()
                        row["error"] = f"{type(e).__name__}: {e}"[:300]
                print("[gpu_check]", {k: row[k] for k in ("method", "device", "seconds", "cpu_seconds", "peak_mib",
                                                         "metric", "value", "epochs", "error") if k in row}, flush=True)
                writer.writerow(row)
                f.flush()
    print(f"[gpu_check] done in {time.perf_counter() - start:.1f} s -> {args.out}", flush=True)


if __name__ == "__main__":
    main()
