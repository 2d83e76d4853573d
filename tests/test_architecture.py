"""The architecture is a contract: `lint-imports` checks the layers of leads/ (pyproject.toml
[tool.importlinter]; docs/development.md draws them) and grimp's graph shows no import cycle in leads/ or
devhost/. The last two tests break a copy of the tree on purpose (an upward import, a cycle, each a lazy
import inside a function) and show that the checks catch it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.azurite import PROJECT_ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], check=False, cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}, timeout=120)


def _cycles(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.support.import_graph"], check=False, cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root)}, timeout=120)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for name in ("leads", "devhost", "tests/support"):
        shutil.copytree(PROJECT_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "tests" / "__init__.py").touch()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def _add_lazy_import(module: Path, imported: str) -> None:
    module.write_text(module.read_text(encoding="utf-8")
                      + f"\n\ndef _added_by_the_test() -> None:\n    import {imported}  # noqa\n", encoding="utf-8")


def test_the_layer_contracts_hold() -> None:
    result = _lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_import_cycle_in_leads_or_devhost() -> None:
    result = _cycles(PROJECT_ROOT)
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_upward_import_even_a_lazy_one_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _add_lazy_import(root / "leads" / "core" / "keys.py", "leads.runtime")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "leads.core is not allowed to import leads.runtime" in result.stdout


def test_an_azure_import_in_the_core_breaks_the_contract(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _add_lazy_import(root / "leads" / "core" / "model.py", "azure.data.tables")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "The core imports no Azure, HTTP or telemetry package BROKEN" in result.stdout


def test_a_cycle_even_through_a_lazy_import_is_found(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    _add_lazy_import(root / "leads" / "core" / "model.py", "leads.core.parsing")  # parsing imports model
    result = _cycles(root)
    assert result.returncode == 1
    assert "cycle: leads.core.model <-> leads.core.parsing" in result.stdout
