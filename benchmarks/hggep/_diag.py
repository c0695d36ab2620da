"""Shared set-up of the one-fold HGGEP diagnostics (c2_positions.py, collapse.py): command-line epochs and held-out
section, the six sections with full-resolution images, the paper's 785 genes, one torch thread."""
import sys

import torch

torch.set_num_threads(1)

from stlit.data import load, hggep_genes

EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 10
TEST = sys.argv[2] if len(sys.argv) > 2 else "C2"
SECTIONS = ["B4", "C2", "C3", "C4", "C5", "C6"]


def sections() -> dict:
    "Every section of SECTIONS, loaded, by name."
    return {s: load("her2st", section=s) for s in SECTIONS}


genes = hggep_genes("her2")
