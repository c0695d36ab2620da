__version__ = "0.1.0"
# Hand-written (not exported from a notebook; nbdev only updates the version line above).
# Submodules load lazily so `import stlit; stlit.data.load(...)` works without importing torch up front.
# The list is read from the package folder, so `dir(stlit)` names only modules that exist.
import importlib as _importlib
from pathlib import Path as _Path

_SUBMODULES = tuple(sorted(p.stem for p in _Path(__file__).parent.glob("*.py") if not p.stem.startswith("_")))


def __getattr__(name):
    if name in _SUBMODULES:
        module = _importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'stlit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
