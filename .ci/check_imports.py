"""Check the import contracts in pyproject.toml ([tool.importlinter]) with import-linter.

models/ and training/ sit at the top of the repository but install as vidsr.models and
vidsr.training (pyproject's package-dir), which import-linter cannot follow. So this copies
the Python files into a temporary tree laid out the way the package installs and runs
`lint-imports` there. Exit status: lint-imports' own (0 when every contract is kept).

Usage: python .ci/check_imports.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from installed_tree import ROOT, assemble  # noqa: E402


def main() -> int:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        print("lint-imports not found: pip install import-linter", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vidsr-imports-") as tmp:
        tree = Path(tmp)
        assemble(tree, weights=False)
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run([lint, "--no-cache", str(ROOT / "pyproject.toml")], cwd=tree, env=env)
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
