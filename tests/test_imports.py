"""The package's modules import one another without a circle, TYPE_CHECKING imports included,
so each one can be read (and imported) before the ones that use it."""

import ast
import importlib
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import fraud_detection

ROOT = Path(fraud_detection.__file__).parent
# Entry points that start something when imported: read, never imported here.
STARTS_SOMETHING = {
    "fraud_detection.__main__",
    "fraud_detection.gunicorn_conf",
    "fraud_detection.serving.wsgi",
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__)."""
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules `name` imports anywhere in its text, with the packages whose
    __init__ such an import runs first; `name`'s own packages are running already, and
    `from pkg import mod` imports `mod` (and `pkg`'s __init__ only from outside `pkg`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in known}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                if f"{source}.{alias.name}" in known:
                    found.add(f"{source}.{alias.name}")
                elif source in known:
                    found.add(source)
    own = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 2)}
    runs = {".".join(m.split(".")[:k]) for m in found for k in range(1, m.count(".") + 2)}
    return (found | (runs & known)) - own


def test_every_module_imports() -> None:
    for name in sorted(set(modules()) - STARTS_SOMETHING):
        importlib.import_module(name)


def test_the_import_graph_has_no_cycle() -> None:
    found = modules()
    graph = {name: imported(name, path, set(found)) for name, path in found.items()}
    assert "fraud_detection.log_record" in graph["fraud_detection.serving.dataplane"]
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None
    assert set(order) == set(found)


def test_the_log_record_is_a_leaf() -> None:
    found = modules()
    leaf = "fraud_detection.log_record"
    assert imported(leaf, found[leaf], set(found)) <= {"fraud_detection.schema"}
