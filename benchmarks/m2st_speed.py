"""m2ST's CPU cost stage by stage, and its default against the authors' settings (issue 12, part 2).

Each (dataset, variant, seed) runs `stlit.m2st.fit` exactly as benchmarks/bench_domains.py does (same loaders, same
use_rep/graph rule), in a fresh subprocess with one torch thread and one BLAS thread, and appends one row to
benchmarks/results/m2st_speed.csv: CPU seconds of each stage (features, graph, autoencoder, clustering), epochs run,
restarts and their objectives, peak resident memory, ARI/NMI (scored after the run; nothing is chosen by them),
the machine and its load. Rows already in the CSV are skipped, so an interrupted run resumes.

Variants (M2STConfig):
  paper    M2STConfig.paper(): CCST recipe, 200 PCs, 200 fixed epochs, 10 restarts (the default before issue 12)
  inputs   paper() with the 'hvg' inputs (3,000 seurat_v3 HVGs, log, scale, PCA 30): the input change alone
  default  M2STConfig(): 'hvg' inputs, loss-based stopping, 3 restarts
  smooth   the default with smooth=True (embeddings averaged over each spot's graph neighbours before Part B)
  paper_profile  M2STConfig.paper(n_epochs=5, n_init=2): the authors' settings cut short, run with --profile for
           their per-epoch and per-restart cost (its ARI means nothing). The 'paper' rows of the six datasets
           bench_domains.py had run are copied from benchmarks/results/domains.csv (said in their `config`).

--profile adds the CPU seconds of one forward+backward pass of each GAT block (shared layer, each scale's encoder and
decoder; mean of 3 passes on the trained model) and of one clustering restart.

Usage (one thread; minutes per dataset):
  OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 nice -n 19 python benchmarks/m2st_speed.py \\
      --datasets dlpfc_151673 starmap_mpfc_bz5 --variants paper default --profile
  python benchmarks/m2st_speed.py --table        # print the per-dataset table from the CSV
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CSV = HERE / "results" / "m2st_speed.csv"
sys.path.insert(0, str(HERE))
from _memory import reset_peak, status  # noqa: E402

DATASETS = ["dlpfc_151673", "dlpfc_151510", "starmap_1207", "starmap_mpfc_bz5", "starmap_mpfc_bz9",
            "starmap_mpfc_bz14", "osmfish", "bc_a1", "her2st_a1"]  # the labelled sets of domains.csv
VARIANTS = {"paper": "M2STConfig.paper()", "inputs": "M2STConfig.paper(features='hvg', n_pcs=30)",
            "default": "M2STConfig()", "smooth": "M2STConfig(smooth=True)",
            "paper_profile": "M2STConfig.paper(n_epochs=5, n_init=2)"}


def load(name):
    "The dataset as bench_domains loads it."
    import stlit
    if name.startswith("starmap_mpfc_"):
        return stlit.data.load("starmap_mpfc", section=name.rsplit("_", 1)[1].upper())
    special = {"starmap_1207": ("m2st_starmap", {}), "bc_a1": ("m2st_bc_a1", {}),
               "osmfish": ("osmfish", dict(drop_excluded=True)), "her2st_a1": ("her2st", dict(section="A1"))}
    key, kw = special.get(name, (name, {}))
    return stlit.data.load(key, **kw)


def config(variant):
    from stlit.m2st import M2STConfig
    return {"paper": M2STConfig.paper, "inputs": lambda: M2STConfig.paper(features="hvg", n_pcs=30),
            "default": M2STConfig, "smooth": lambda: M2STConfig(smooth=True),
            "paper_profile": lambda: M2STConfig.paper(n_epochs=5, n_init=2)}[variant]()


def machine():
    model = platform.machine()
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores, {model}"


def block_profile(model, X, A):
    "CPU seconds of one forward+backward pass of each GAT block (mean of 3), on the trained model in train mode."
    import numpy as np
    import torch
    from stlit.graph import edge_index
    x, e = torch.as_tensor(np.asarray(X, dtype=np.float32)), edge_index(A, self_loops=False)
    model.train()

    def cost(fn):
        fn().sum().backward()  # warm-up
        tic = time.process_time()
        for _ in range(3):
            fn().sum().backward()
        return (time.process_time() - tic) / 3

    out = {"cpu_block_shared": cost(lambda: model.shared(x, e))}
    shared = model.shared(x, e).detach()
    for m, (enc, dec) in enumerate(zip(model.encoders, model.decoders)):
        out[f"cpu_block_encoder{m + 1}"] = cost(lambda: enc(shared, e))
        h = enc(shared, e).detach()
        out[f"cpu_block_decoder{m + 1}"] = cost(lambda: dec(h, e))
    return out


def run_one(dataset, variant, seed, profile):
    "One fit; returns the CSV row."
    import numpy as np
    import torch
    from stlit import m2st
    from stlit.metrics import cluster_scores
    torch.set_num_threads(1)
    a = load(dataset)
    K = int(a.obs["truth"].nunique())
    graph = "adjacency" if "adjacency" in a.obsp else None
    use_rep = None if a.uns["dataset"]["X"] == "counts" else "X"
    cfg = config(variant)
    load_start = os.getloadavg()[0]
    reset_peak()
    tic, cpu = time.perf_counter(), time.process_time()
    res = m2st.fit(a, K, seed=seed, verbose=False, device="cpu", use_rep=use_rep, graph_key=graph, config=cfg)
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    peak = status("VmHWM") * 1024
    truth = a.obs["truth"]
    s = cluster_scores(truth, res.labels)
    c = res.clusters
    objectives = list(c.restart_objectives)
    first3 = int(np.argmin(objectives[:3]))  # what n_init=3 keeps (restart r is seeded seed + r)
    inputs = a.uns["m2st"]["inputs"]
    loss = res.history["loss"].to_numpy()
    row = dict(dataset=dataset, variant=variant, seed=seed, config=VARIANTS[variant], n_obs=a.n_obs, K=K,
               n_features=inputs["n_features"], features=inputs["features"], n_epochs_run=inputs["n_epochs_run"],
               **{f"cpu_{k}": round(v, 2) for k, v in res.cpu_seconds.items()},
               cpu_per_epoch=round(res.cpu_seconds["autoencoder"] / inputs["n_epochs_run"], 4),
               cpu_total=round(cpu, 2), wall_total=round(wall, 2), peak_mib=round(peak, 1),
               n_init=cfg.n_init, kept_restart=c.restart, cluster_iters=c.n_iter,
               restart_objectives=json.dumps([round(o, 3) for o in objectives]),
               ari=s["ari"], nmi=s["nmi"],
               ari_first3=cluster_scores(truth, c.restart_labels[first3])["ari"] if len(objectives) > 3 else s["ari"],
               restart_aris=json.dumps([round(cluster_scores(truth, lab)["ari"], 4) for lab in c.restart_labels]),
               loss_first=float(loss[0]), loss_last=float(loss[-1]), loss_min=float(loss.min()),
               load_1min_start=round(load_start, 2), load_1min_end=round(os.getloadavg()[0], 2),
               machine=machine(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
               commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                     text=True).stdout.strip())
    if profile and res.model is not None:
        X, _ = m2st._features(a, use_rep, None, cfg, seed)
        A, _ = m2st._graph(a, graph, "spatial")
        A, _ = m2st.check_spatial_graph(A, a.n_obs, method="m2st", reason="")
        row.update({k: round(v, 4) for k, v in block_profile(res.model, X, A).items()})
        tic = time.process_time()
        m2st.multiscale_cluster(res.embeddings, K, n_init=1, seed=seed, dim_specific=cfg.dim_specific,
                                lambda1=cfg.lambda1, lambda2=cfg.lambda2, lambda3=cfg.lambda3, max_iter=cfg.max_iter)
        row["cpu_one_restart"] = round(time.process_time() - tic, 2)
    return row


def table(rows):
    "dataset x variant: ARI and total CPU seconds (seed means)."
    import pandas as pd
    rows = rows[rows["variant"] != "paper_profile"]
    t = rows.pivot_table(index="dataset", columns="variant", values=["ari", "cpu_total"], aggfunc="mean")
    t.loc["mean"] = t.mean()
    return t.round(3)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="*", default=DATASETS)
    ap.add_argument("--variants", nargs="*", default=["paper", "default"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--profile", action="store_true", help="also time each GAT block and one clustering restart")
    ap.add_argument("--table", action="store_true", help="only print the table of the CSV")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        spec = json.loads(args.child)
        print("RESULT " + json.dumps(run_one(spec["dataset"], spec["variant"], spec["seed"], spec["profile"])),
              flush=True)
        return 0
    import pandas as pd
    if args.table:
        print(table(pd.read_csv(CSV)).to_string())
        return 0
    unknown = [d for d in args.datasets if d not in DATASETS] + [v for v in args.variants if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown datasets/variants {unknown}: datasets {DATASETS}, variants {list(VARIANTS)}")
    have = pd.read_csv(CSV) if CSV.exists() else pd.DataFrame(columns=["dataset", "variant", "seed"])
    done = set(zip(have["dataset"], have["variant"], have["seed"].astype(int)))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    for seed in args.seeds:
        for dataset in args.datasets:
            for variant in args.variants:
                if (dataset, variant, seed) in done:
                    continue
                spec = dict(dataset=dataset, variant=variant, seed=seed, profile=args.profile)
                proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                                      text=True, env=env, cwd=ROOT)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode != 0 or not lines:
                    print(f"{dataset} {variant} seed {seed}: FAILED\n{proc.stderr[-2000:]}", flush=True)
                    continue
                row = json.loads(lines[-1][7:])
                CSV.parent.mkdir(parents=True, exist_ok=True)
                new = pd.concat([pd.read_csv(CSV), pd.DataFrame([row])], ignore_index=True) if CSV.exists() \
                    else pd.DataFrame([row])
                new.to_csv(CSV, index=False)  # columns may differ between rows (profile or not)
                print(f"{dataset:18s} {variant:8s} seed {seed}: ARI {row['ari']:.3f}  {row['cpu_total']:7.1f} CPU s "
                      f"({row['n_epochs_run']} epochs, load {row['load_1min_end']})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
