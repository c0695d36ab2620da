"""Scaling of `stlit.graph.spatial_knn` (k=6, union-symmetrised CSR) at 20k, 50k and 100k points.

Points: uniform random in a square of side sqrt(N) (density 1 point per unit area, seed 0), so the kNN structure is
the same at every size. Each size runs in a fresh subprocess so that `ru_maxrss` (peak resident memory of that
process, including Python, numpy, scipy) belongs to that size alone. Reported per size: median of 3 wall times of
`spatial_knn`, peak Python-traced allocation during one call (`tracemalloc`), process peak RSS, bytes of the CSR
result, and the size a dense float64 N×N adjacency would have had.

Run: `python benchmarks/graph_knn.py` → prints a table and writes `benchmarks/results/graph_knn.csv`.
"""
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

SIZES = (20_000, 50_000, 100_000)
K = 6
REPEATS = 3


def worker(n: int) -> dict:
    import numpy as np
    from stlit.graph import spatial_knn

    rng = np.random.default_rng(0)
    coords = rng.uniform(0, np.sqrt(n), size=(n, 2))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        A = spatial_knn(coords, k=K)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    A = spatial_knn(coords, k=K)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    csr_bytes = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    return dict(n_points=n, k=K, points="uniform random, density 1, seed 0", repeats=REPEATS,
                median_wall_s=float(np.median(times)), min_wall_s=float(min(times)),
                tracemalloc_peak_mib=peak / 2**20,
                ru_maxrss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,  # Linux: KiB
                rss_before_build_mib=rss_before / 1024,
                nnz=int(A.nnz), csr_mib=csr_bytes / 2**20, dense_equivalent_gib=8 * n * n / 2**30)


def main():
    import pandas as pd

    rows = []
    for n in SIZES:
        out = subprocess.run([sys.executable, __file__, "--worker", str(n)], check=True, capture_output=True, text=True,
                             env=dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1")))
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    df = pd.DataFrame(rows)
    df["wall_per_1k_points_ms"] = 1000 * df.median_wall_s / (df.n_points / 1000)
    df["traced_per_point_bytes"] = df.tracemalloc_peak_mib * 2**20 / df.n_points
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    df.to_csv(results / "graph_knn.csv", index=False)
    cols = ["n_points", "median_wall_s", "wall_per_1k_points_ms", "tracemalloc_peak_mib", "traced_per_point_bytes",
            "ru_maxrss_mib", "rss_before_build_mib", "nnz", "csr_mib", "dense_equivalent_gib"]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3f}".format):
        print(df[cols].to_string(index=False))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        print(json.dumps(worker(int(sys.argv[2]))))
    else:
        main()
