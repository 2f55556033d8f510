"""The package's shape (issue 24): pyproject.toml's import-linter contracts hold, and they catch an
import cycle even where the import is written inside a function.

Run as CI runs them: the venv's `lint-imports` script, in a subprocess, its exit code the verdict.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
NO_CYCLES = "No import cycles among reconciler's modules and packages"


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the package under `root`, found there before any installed copy."""
    environment = {**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=environment, capture_output=True,
                          text=True, timeout=300)


def test_the_import_contracts_hold() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{NO_CYCLES} KEPT" in result.stdout


def test_an_import_inside_a_function_that_closes_a_cycle_breaks_the_contracts(tmp_path: Path) -> None:
    """The model is the bottom of the package: a model that reaches for the executor, even at call
    time, closes a cycle (the executor imports the model) and breaks the layers too."""
    shutil.copytree(ROOT / "reconciler", tmp_path / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "reconciler" / "model.py"
    model.write_text(model.read_text() + "\n\ndef _applied_at_call_time():\n    from .apply import executor\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{NO_CYCLES} BROKEN" in result.stdout
    assert "reconciler.model is not allowed to import reconciler.apply" in result.stdout
