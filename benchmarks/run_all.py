"""Run every benchmark script in benchmarks/ (each writes benchmarks/results/<name>.csv and prints a summary).

Machine of record for the committed results: 2 CPU cores, 24 GiB RAM, no GPU (the project's CI machine kind).
"""
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    (HERE / "results").mkdir(exist_ok=True)
    failed = []
    for script in sorted(HERE.glob("*.py")):
        if script.name == Path(__file__).name or script.name.startswith("_"):  # helpers, not benchmarks
            continue
        print(f"== {script.name}", flush=True)
        if subprocess.call([sys.executable, str(script)], cwd=HERE.parent) != 0:
            failed.append(script.name)
    if failed:
        sys.exit(f"failed: {failed}")
