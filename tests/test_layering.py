"""The core's import graph (sqnxt_engine/, read with ast): no cycle between its folders, every
import goes down the layering that sqnxt_engine/__init__.py writes down, and nothing in the core
imports the emulator (sqnxt_engine.emu) or the loop-nest kernels (sqnxt_engine.kernels)."""
import ast
import re
from pathlib import Path

import sqnxt_engine

CORE = Path(__file__).resolve().parents[1] / "sqnxt_engine"
TOP = "(top)"  # the top-level modules (errors, progress, limits, __init__): below every folder


def module_of(path: Path) -> list[str]:
    """sqnxt_engine.a.b as ['sqnxt_engine', 'a', 'b'] (a package as its folder's name)."""
    parts = ["sqnxt_engine", *path.relative_to(CORE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(path: Path) -> list[tuple[str, ...]]:
    """Every module a file imports (see imports_in)."""
    package = module_of(path) if path.name == "__init__.py" else module_of(path)[:-1]
    return imports_in(path.read_text("utf-8"), package)


def imports_in(source: str, package: list[str]) -> list[tuple[str, ...]]:
    """Every module `source` (a module of `package`) imports, anywhere in it (functions included),
    as absolute names; for `from X import a` both X and X.a (a may be a module)."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [tuple(a.name.split(".")) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = tuple(base + (node.module.split(".") if node.module else []))
            else:
                target = tuple(node.module.split("."))
            out.append(target)
            out += [target + (a.name,) for a in node.names]
    return out


def folder_of(module: tuple[str, ...]) -> str:
    """The core folder a module belongs to (TOP for a top-level module)."""
    if len(module) < 2:
        return TOP
    return module[1] if (CORE / module[1]).is_dir() else TOP


def edges() -> dict[tuple[str, str], list[str]]:
    """(from folder, to folder) -> the files that make the edge."""
    out: dict[tuple[str, str], list[str]] = {}
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE).parts
        here = rel[0] if len(rel) > 1 else TOP
        for target in imported(path):
            if target[0] != "sqnxt_engine" or target[1:2] in (("emu",), ("kernels",)):
                continue
            there = folder_of(target)
            if there != here:
                out.setdefault((here, there), []).append(str(path.relative_to(CORE)))
    return out


def layers() -> list[str]:
    line = re.search(r"^Layers, lowest first: (.+)$", sqnxt_engine.__doc__, re.M)
    assert line, "sqnxt_engine/__init__.py's docstring writes down the layers"
    return [name.strip() for name in line.group(1).split("<")]


def test_the_written_layers_are_the_core_folders():
    folders = {p.parent.name for p in CORE.glob("*/__init__.py")} - {"data"}  # data: files only
    assert sorted(layers()) == sorted(folders)


def test_imports_go_down_the_layers():
    order = {name: i for i, name in enumerate(layers())}
    order[TOP] = -1
    upward = {f"{a} -> {b} ({', '.join(sorted(set(files)))})"
              for (a, b), files in edges().items() if order[b] >= order[a]}
    assert not upward, "imports that go up or sideways:\n" + "\n".join(sorted(upward))


def test_no_cycle_between_the_core_folders():
    graph: dict[str, set[str]] = {}
    for a, b in edges():
        graph.setdefault(a, set()).add(b)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_core_imports_neither_the_emulator_nor_the_loop_nest_kernels():
    found = [f"{path.relative_to(CORE)}: {'.'.join(target)}"
             for path in sorted(CORE.rglob("*.py")) for target in imported(path)
             if target[:2] in (("sqnxt_engine", "emu"), ("sqnxt_engine", "kernels"))]
    assert not found, "the core imports emu/ or kernels/:\n" + "\n".join(found)


def test_the_scan_sees_relative_and_function_level_imports():
    source = "import numpy\ndef f():\n    from ..kernels import api\n    from .. import io\n"
    names = imports_in(source, ["sqnxt_engine", "functional"])
    assert ("sqnxt_engine", "kernels", "api") in names and ("sqnxt_engine", "io") in names
    assert folder_of(("sqnxt_engine", "io")) == "io" and folder_of(("sqnxt_engine", "errors")) == TOP
