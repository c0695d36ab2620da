"""Process memory readings shared by the benchmark scripts (Linux /proc; NaN elsewhere)."""
from pathlib import Path


def status(field: str) -> float:
    "VmRSS / VmHWM of this process in GiB (Linux /proc)."
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def reset_peak():
    "Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs)."
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
