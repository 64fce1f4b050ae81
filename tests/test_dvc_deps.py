"""dvc.yaml: every stage lists exactly the mmer modules its script reaches through imports.

DVC reruns a stage only when one of its listed deps changes, so a module missing from a
stage's deps lets a code change leave ``dvc repro`` saying "up to date". The import closure
is computed from the source (every ``import`` statement, at module level or inside a
function), so a lazy import counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from conftest import ROOT

PACKAGE = "mmer"


def module_file(name: str, root: Path = ROOT) -> Path | None:
    """The source file of module ``name`` (``mmer.x.y``) under ``root``, or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(path: Path) -> set[str]:
    """Names of the mmer modules one source file imports (anywhere in the file)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from mmer import media`: media is a module
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == PACKAGE}


def import_closure(script: Path, root: Path = ROOT) -> set[str]:
    """Paths (relative to ``root``) of every mmer source file ``script`` reaches."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        for name in imported_modules(path):
            # a package import runs its __init__ too
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:depth]), root)
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return {str(p.relative_to(root)) for p in seen} - {f"{PACKAGE}/__init__.py"}


def stage_scripts(dvc: dict) -> dict[str, Path]:
    scripts = {}
    for name, stage in dvc["stages"].items():
        match = re.search(r"python\s+(stages/\S+\.py)", stage["cmd"])
        assert match, f"stage {name}: cmd does not run a stages/*.py script"
        scripts[name] = ROOT / match.group(1)
    return scripts


def listed_code(stage: dict) -> set[str]:
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    return {d for d in deps if d.startswith(f"{PACKAGE}/")}


DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())


def test_package_init_holds_only_the_version():
    """mmer/__init__.py is left out of the deps: it must not hold code a stage depends on."""
    tree = ast.parse((ROOT / PACKAGE / "__init__.py").read_text())
    assigned = [
        t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)
    ]
    others = [node for node in tree.body if not isinstance(node, (ast.Assign, ast.Expr))]
    assert assigned == ["__version__"] and not others


@pytest.mark.parametrize("stage", sorted(DVC["stages"]))
def test_stage_lists_its_import_closure(stage):
    script = stage_scripts(DVC)[stage]
    closure = import_closure(script)
    listed = listed_code(DVC["stages"][stage])
    deps = [d if isinstance(d, str) else next(iter(d)) for d in DVC["stages"][stage].get("deps", [])]
    assert str(script.relative_to(ROOT)) in deps, f"stage {stage}: its script {script} is not a dep"
    missing, extra = sorted(closure - listed), sorted(listed - closure)
    assert not missing and not extra, (
        f"stage {stage}: dvc.yaml misses {missing} and lists {extra} that {script.name} does not import; "
        f"the deps should be: {sorted(closure)}"
    )


def test_closure_follows_lazy_and_module_imports(tmp_path):
    """Known answer on a tiny fake package: lazy imports inside functions and `from pkg import mod` count."""
    pkg = tmp_path / PACKAGE
    pkg.mkdir()
    (pkg / "__init__.py").write_text("__version__ = '0'\n")
    (pkg / "a.py").write_text("def f():\n    from mmer import b\n    return b\n")
    (pkg / "b.py").write_text("import mmer.c\n")
    (pkg / "c.py").write_text("import os\n")
    (pkg / "unused.py").write_text("")
    script = tmp_path / "script.py"
    script.write_text("from mmer.a import f\n")
    assert import_closure(script, tmp_path) == {"mmer/a.py", "mmer/b.py", "mmer/c.py"}
