"""CSV result files of the benchmark scripts: append rows as runs finish (resumable), find a row already done, claim a
row so that concurrent runs of one script do not both compute it, read a file back with the current columns.
(Not `_io.py`: that name is CPython's built-in io module.)"""
import contextlib
import fcntl
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd


def append_rows(path, rows, columns=None) -> None:
    """Append `rows` (dicts or a DataFrame) to the CSV `path`, written with its header when new. With `columns` the rows
    are written in that order (missing ones empty), under a lock: runs appending at once write one header; without, a
    row with a column the file lacks rewrites the file wider (the old rows get NaN there)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if columns is not None:
        with open(path, "a", newline="") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes
            new.reindex(columns=list(columns)).to_csv(f, header=os.fstat(f.fileno()).st_size == 0, index=False)
    elif not path.exists():
        new.to_csv(path, index=False)
    else:
        old = pd.read_csv(path)
        if set(new.columns) - set(old.columns):
            pd.concat([old, new], ignore_index=True).to_csv(path, index=False)
        else:
            new.reindex(columns=old.columns).to_csv(path, mode="a", header=False, index=False)


def has_row(path, **key) -> bool:
    "Whether the CSV `path` holds a row with these values (compared as text): a run resumes where it stopped."
    path = Path(path)
    if not path.exists():
        return False
    t = pd.read_csv(path)
    if any(k not in t for k in key):
        return False
    mask = np.ones(len(t), bool)
    for k, v in key.items():
        mask &= t[k].astype(str).values == str(v)
    return bool(mask.any())


def _claim_file(path, key) -> Path:
    "The lock file of row `key` of the CSV `path` (in the temporary folder: nothing appears beside the results)."
    def digest(text):
        return hashlib.sha1(text.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "stlit-claims" / digest(str(Path(path).resolve()))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / (digest(repr(sorted((k, str(v)) for k, v in key.items()))) + ".lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _take(lock: Path) -> bool:
    "Create `lock` naming this process; False when a live process holds it (one left by a dead process is replaced)."
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                pid = int(lock.read_text() or 0)
            except (OSError, ValueError):
                pid = 0
            if (pid and _alive(pid)) or (not pid and lock.exists()):  # no pid yet: another process is writing it
                return False
            lock.unlink(missing_ok=True)
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


@contextlib.contextmanager
def claim(path, **key):
    """Yield whether this process should compute the row `key` of the CSV `path`: False when the file holds it (read
    now, not at the start of the run) or another live process has claimed it. Append the row inside the `with`: the
    claim (a lock file naming this process) is released on exit."""
    lock = _claim_file(path, key)
    if not _take(lock):
        yield False
        return
    try:
        yield not has_row(path, **key)
    finally:
        lock.unlink(missing_ok=True)


def read_rows(path, columns) -> pd.DataFrame:
    "The rows of the CSV `path` with `columns` (an older file gains the new columns, empty, and is rewritten)."
    path = Path(path)
    if not path.exists():
        return pd.DataFrame(columns=list(columns))
    done = pd.read_csv(path)
    if list(done.columns) != list(columns):
        done.reindex(columns=list(columns)).to_csv(path, index=False)
        done = pd.read_csv(path)
    return done
