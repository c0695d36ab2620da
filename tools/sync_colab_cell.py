"""Write the Colab install cell (tools/colab_cell.py) into cell 0 of every notebook in nbs/ and experiments/.

    python tools/sync_colab_cell.py            # rewrite cell 0 where it differs (a new cell is inserted when the
                                               # first cell is not an install cell)
    python tools/sync_colab_cell.py --check    # change nothing; exit 1 listing the notebooks whose cell 0 differs
    python tools/sync_colab_cell.py --root DIR # another tree (e.g. a copy, for a dry run)

Cell 0 is an install cell when it is a code cell mentioning `google.colab`: it is replaced in place (its id kept).
The cell carries the `remove-cell` tag (hidden in the Jupyter Book) and starts with `#| hide` (nbdev).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colab_cell import CELL, TAGS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("nbs", "experiments")


def notebooks(root: Path) -> list[Path]:
    "Every notebook of the book's source folders (checkpoints excluded)."
    return sorted(p for folder in FOLDERS for p in (root / folder).glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def _is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and "google.colab" in cell.source


def problem(nb) -> str | None:
    "Why cell 0 of `nb` is not the current install cell (None when it is)."
    if not nb.cells or not _is_install_cell(nb.cells[0]):
        return "first cell is not the Colab install cell"
    cell = nb.cells[0]
    if cell.source != CELL:
        return "first cell differs from tools/colab_cell.py"
    if not set(TAGS) <= set(cell.metadata.get("tags", [])):
        return f"first cell lacks the tag(s) {TAGS}"
    return None


def sync(nb) -> bool:
    "Make cell 0 the install cell; True if `nb` changed."
    if problem(nb) is None:
        return False
    if nb.cells and _is_install_cell(nb.cells[0]):
        cell = nb.cells[0]
        cell.source = CELL
        cell.outputs, cell.execution_count = [], None
    else:
        cell = nbformat.v4.new_code_cell(CELL)
        nb.cells.insert(0, cell)
    cell.metadata["tags"] = list(dict.fromkeys([*cell.metadata.get("tags", []), *TAGS]))
    return True


def check(root: Path = ROOT) -> list[str]:
    "'path: reason' for every notebook whose cell 0 is not the install cell."
    bad = []
    for path in notebooks(root):
        why = problem(nbformat.read(path, as_version=4))
        if why:
            bad.append(f"{path.relative_to(root)}: {why}")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook's cell 0 differs")
    ap.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    args = ap.parse_args(argv)
    root = args.root.resolve()
    if args.check:
        bad = check(root)
        if bad:
            print(f"{len(bad)} notebook(s) lack the current Colab install cell (run python tools/sync_colab_cell.py):")
            print("\n".join(f"  {b}" for b in bad))
            return 1
        print(f"Colab install cell: all {len(notebooks(root))} notebooks up to date")
        return 0
    changed = []
    for path in notebooks(root):
        nb = nbformat.read(path, as_version=4)
        if sync(nb):
            nbformat.write(nb, path)
            changed.append(str(path.relative_to(root)))
    print(f"rewrote cell 0 of {len(changed)} notebook(s)" + (": " + ", ".join(changed) if changed else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
