"""The hidden first cell of every notebook (nbs/ and experiments/): one source of truth.

`CELL` is written into cell 0 of each notebook by `tools/sync_colab_cell.py` (`--check` lists the notebooks whose
first cell differs; `tools/build_book.py` runs that check, so a book build fails when a page lacks the cell).

What the cell does when `google.colab` is imported (a Colab runtime), and nothing anywhere else:

- sets `STLIT_DATA` to `/content/stlit_data` unless it is already set, so `stlit.data.fetch` has a cache folder, and
  `STLIT_FETCH=1` (unless set), so `stlit.data.load` fetches a dataset's missing files: every page's data cell works;
- if `stlit` is not importable yet, `pip install`s it with its `images` and `fetch` extras (image encoders; `rdata`
  to convert the R objects that `stlit.data.fetch` downloads), under constraints that pin the runtime's
  own torch, torchvision, torchaudio, numpy, scipy and pandas to the versions installed (read with
  `importlib.metadata`, so local labels such as `+cu126` are kept): pip then either leaves them alone or refuses with
  a resolution error; it never downloads a second torch or swaps numpy under a running kernel.

Overrides (environment variables): `STLIT_INSTALL_SPEC` replaces the pip requirement
(default `stlit[images,fetch] @ git+https://github.com/stlit/stlit`; e.g. a local wheel path, used by tests/test_packaging.py);
`STLIT_DATA` set before the cell is kept.
"""

TAGS = ["remove-cell"]  # hidden in the Jupyter Book (the `#| hide` line hides it in nbdev's docs)

DEFAULT_SPEC = "stlit[images,fetch] @ git+https://github.com/stlit/stlit"
COLAB_DATA = "/content/stlit_data"
KEEP = ("torch", "torchvision", "torchaudio", "numpy", "scipy", "pandas")

CELL = f'''#| hide
# Colab only (does nothing elsewhere): install stlit with its extras, keeping the runtime's own torch/numpy,
# and keep downloaded data in $STLIT_DATA. Written by tools/sync_colab_cell.py from tools/colab_cell.py.
import sys
if "google.colab" in sys.modules:
    def _colab_setup():
        import importlib.metadata, importlib.util, os, subprocess, tempfile
        os.environ.setdefault("STLIT_DATA", "{COLAB_DATA}")
        os.environ.setdefault("STLIT_FETCH", "1")  # stlit.data.load fetches a dataset's missing files
        if importlib.util.find_spec("stlit") is not None:
            return
        keep = []  # pin what the runtime has: pip keeps it, or stops with a resolution error
        for name in {KEEP!r}:
            try:
                keep.append(f"{{name}}=={{importlib.metadata.version(name)}}")
            except importlib.metadata.PackageNotFoundError:
                pass
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
            pins.write("\\n".join(keep) + "\\n")
        spec = os.environ.get("STLIT_INSTALL_SPEC", "{DEFAULT_SPEC}")
        done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", pins.name, spec])
        if done.returncode != 0:
            raise RuntimeError(f"pip could not install {{spec}} beside this runtime's {{', '.join(keep)}} (pip's reason "
                               "is above); set STLIT_INSTALL_SPEC to install stlit another way")
    _colab_setup()
    del _colab_setup'''


def cell_source() -> str:
    "The cell's source text."
    return CELL
