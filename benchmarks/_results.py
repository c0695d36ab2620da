"""CSV result files of the benchmark scripts: append rows as runs finish (resumable), find a row already done, read a
file back with the current columns. (Not `_io.py`: that name is CPython's built-in io module.)"""
from pathlib import Path

import numpy as np
import pandas as pd


def append_rows(path, rows, columns=None) -> None:
    """Append `rows` (dicts or a DataFrame) to the CSV `path`, written with its header when new. With `columns` the rows
    are written in that order (missing ones empty); without, a row with a column the file lacks rewrites the file
    wider (the old rows get NaN there)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    if columns is not None:
        new.reindex(columns=list(columns)).to_csv(path, mode="a", header=not path.exists(), index=False)
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
