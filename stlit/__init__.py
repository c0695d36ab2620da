__version__ = "0.1.0"
# Hand-written (not exported from a notebook; nbdev only updates the version line above).
# Submodules load lazily so `import stlit; stlit.data.load(...)` works without importing torch up front.
import importlib as _importlib

_SUBMODULES = ("core", "data", "pp", "graph", "nn", "train", "cluster", "metrics", "plot",
               "m2st", "hggep", "magnet", "iehercl", "baselines")


def __getattr__(name):
    if name in _SUBMODULES:
        module = _importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'stlit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
