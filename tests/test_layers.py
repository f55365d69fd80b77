"""The layers hold: import-linter's contracts (pyproject.toml) pass, cover every module, and catch an upward import.

Also: no product module imports a storage back end's module or asks whether
an adapter is a particular back end (``isinstance(adapter,
FilesystemAdapter)``); optional abilities are found through
``adapter.features``, which survives wrapping.
"""

from __future__ import annotations

import ast
import importlib
import os
import pkgutil
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import setuptools

import storage_adapters
from preservation.settings import REPO_ROOT
from storage_adapters.base import StorageAdapter

PACKAGES = ("preservation", "storage_adapters", "devtools")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # the tree at ``root`` is imported, not the development venv's editable install
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def _layers() -> list[str]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "layers"]
    return [name.strip() for layer in contract["layers"] for name in layer.replace(":", "|").split("|")]


def _modules(package: str) -> list[str]:
    root = REPO_ROOT / package
    return sorted(
        ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts).removesuffix(".__init__")
        for path in root.rglob("*.py")
    )


def test_the_import_contracts_hold():
    result = _lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def _imports_nothing(package: str) -> bool:
    tree = ast.parse(REPO_ROOT.joinpath(*package.split("."), "__init__.py").read_bytes())
    return not any(isinstance(node, (ast.Import, ast.ImportFrom)) for node in ast.walk(tree))


def test_every_module_sits_in_a_layer():
    named = set(_layers())
    unplaced = []
    for module in _modules("preservation") + _modules("storage_adapters") + _modules("devtools"):
        if any(module == n or module.startswith(n + ".") for n in named):
            continue
        # a package split over several layers (preservation.access) is only a docstring: it imports nothing
        if (module in PACKAGES or any(n.startswith(module + ".") for n in named)) and _imports_nothing(module):
            continue
        unplaced.append(module)
    assert unplaced == [], "add these to a layer in pyproject.toml [tool.importlinter] (see docs/architecture.md)"


def test_an_upward_import_breaks_the_contracts(tmp_path):
    for name in ("pyproject.toml", *PACKAGES):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / name)
    upward = {
        # the queue calling the services it queues work for (jobs/handlers.py before issue 15)
        "preservation/jobs/handlers.py": "from preservation.audit import audit_replica\n",
        "preservation/upkeep/audits.py": "from preservation.runtime import worker\n",
        # a shared rule calling back into replication: the hub replication.py was before issue 15
        "preservation/package_state.py": "from preservation.replication import replicate_replica\n",
        "storage_adapters/catalogued.py": "from preservation.catalog import models\n",
        "preservation/placement.py": "from devtools import local_s3\n",
        # a service asking for a back end by its class instead of through the interface
        "preservation/restore.py": "from storage_adapters.filesystem import FilesystemAdapter\n",
    }
    for relative, line in upward.items():
        path = tmp_path / relative
        path.write_text((path.read_text(encoding="utf-8") if path.exists() else "") + line, encoding="utf-8")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    for importer, imported in (("preservation.jobs", "preservation.audit"),
                               ("preservation.upkeep", "preservation.runtime"),
                               ("preservation.package_state", "preservation.replication"),
                               ("storage_adapters", "preservation.catalog"),
                               ("preservation.placement", "devtools")):
        assert f"{importer} is not allowed to import {imported}" in result.stdout, result.stdout
    assert "preservation.restore -> storage_adapters.filesystem" in result.stdout, result.stdout


def test_development_support_stays_out_of_the_wheel():
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = setuptools.find_packages(str(REPO_ROOT), include=include)
    assert {"preservation", "storage_adapters"} <= set(shipped)
    assert [p for p in shipped if p.split(".")[0] in ("devtools", "tests", "bench")] == []


def _concrete_adapters() -> set[str]:
    for module in pkgutil.iter_modules(storage_adapters.__path__, "storage_adapters."):
        importlib.import_module(module.name)
    found, todo = set(), list(StorageAdapter.__subclasses__())
    while todo:
        cls = todo.pop()
        found.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return found


def _class_names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Tuple):
        return [n for elt in node.elts for n in _class_names(elt)]
    if isinstance(node, ast.Attribute):
        return [node.attr]
    return [node.id] if isinstance(node, ast.Name) else []


def test_no_product_module_asks_which_back_end_an_adapter_is():
    concrete = _concrete_adapters()
    assert {"FilesystemAdapter", "S3Adapter", "NodeAdapter"} <= concrete
    asked = []
    for path in sorted((REPO_ROOT / "preservation").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2):
                hits = set(_class_names(node.args[1])) & concrete
                if hits:
                    asked.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno} {', '.join(sorted(hits))}")
    assert asked == [], "use adapter.features (storage_adapters.features), not the adapter's class"
