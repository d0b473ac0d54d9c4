"""Lay the package out as it installs, for tools that cannot follow pyproject's package-dir.

models/ and training/ sit at the top of the repository but install as vidsr.models and
vidsr.training. This copies the Python files (and the shipped weights, unless told not to)
into ``DIR/vidsr/...`` so that ``PYTHONPATH=DIR`` imports vidsr exactly as installed: used by
the import-contract check and by the GPU check on a machine where nothing can be installed.

Usage: python .ci/installed_tree.py DIR [--no-weights]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Where each installed package's files live in the repository (pyproject's package-dir).
INSTALLED_AS = {"vidsr": "vidsr", "vidsr/models": "models", "vidsr/training": "training"}


def assemble(tree: Path, *, weights: bool = True) -> Path:
    """Copy the package into ``tree`` as it is laid out once installed; returns ``tree``."""
    skip = ["__pycache__", "*.md"] + ([] if weights else ["weights"])
    for target, source in INSTALLED_AS.items():
        shutil.copytree(
            ROOT / source, tree / target, ignore=shutil.ignore_patterns(*skip), dirs_exist_ok=True
        )
    return tree


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dir", type=Path)
    p.add_argument("--no-weights", action="store_true")
    args = p.parse_args()
    assemble(args.dir, weights=not args.no_weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
