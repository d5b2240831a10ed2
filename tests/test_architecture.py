"""The package's layout: layers that import only downwards, no cycle, and the lax calls in one wing.

The layers, bottom up (docs/guide/development.md, "Layout"); a module may import from its own layer or any below it:
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "jaxconv"

LAYERS = (
    # argument checks, shape arithmetic, layout names, CPU compiler options and heap tuning
    ("jaxconv._checks", "jaxconv.shapes", "jaxconv.layout", "jaxconv.xla_options", "jaxconv.host_memory"),
    ("jaxconv.spec",),  # the one description of a convolution or pooling call
    # timing on a shared machine; the tuning table and the calls a trace makes, which the dispatcher reads
    ("jaxconv.timing", "jaxconv.tuning.table", "jaxconv.tuning.calls", "jaxconv.tuning.lookup"),
    ("jaxconv.impls",),  # the implementations being raced, and the rule that picks one
    # the public ops: validate, canonicalise, dispatch to an impl
    (
        "jaxconv.corr",
        "jaxconv.conv",
        "jaxconv.pool",
        "jaxconv.pool_indices",
        "jaxconv.transpose",
        "jaxconv.adaptive_pool",
        "jaxconv.convert",
        "jaxconv.tuning",  # measuring the impls for a traced function's calls, and explaining auto's picks
        "jaxconv",
    ),  # fmt: skip
    ("jaxconv.nn", "jaxconv.nnx"),  # Flax modules, Linen and NNX
    ("jaxconv.train",),  # config, steps, loop, data, checkpoints, curves, data parallelism
    ("jaxconv.bench",),  # the race
    ("jaxconv.experiments", "jaxconv.demo"),  # the chapter's experiments
    ("jaxconv.cli", "jaxconv.__main__"),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    """The layer of a module: its own entry, else its package's (``jaxconv.impls.taps`` -> impls)."""
    best, where = "", None
    for index, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, where = name, index
    if where is None:
        raise AssertionError(f"{module} is in no layer of tests/test_architecture.py: add it to one")
    return where


def _imports(path: Path) -> set[str]:
    """The jaxconv modules a file imports (``from jaxconv.x import y`` counts ``jaxconv.x.y`` where
    that is a module, else ``jaxconv.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "jaxconv"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "jaxconv":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").exists() or (
                    PACKAGE.parent / sub.replace(".", "/") / "__init__.py"
                ).exists()
                found.add(sub if is_module else node.module)
    return found


GRAPH = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_every_module_imports_only_from_its_layer_or_below(module):
    upward = {dep for dep in GRAPH[module] if _layer(dep) > _layer(module)}
    assert not upward, f"{module} (layer {_layer(module)}) imports from a layer above it: {sorted(upward)}"


def test_no_import_cycle():
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dep in sorted(GRAPH.get(module, ())):
            if dep == module:
                continue
            if state.get(dep) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*path, module, dep]))
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [])


def test_only_the_impls_call_lax_convolutions_and_window_reductions():
    call = re.compile(r"lax\.(conv_general_dilated|conv_transpose|conv|reduce_window)\(")
    callers = sorted(
        str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py") if call.search(p.read_text())
    )
    assert callers and all(c.startswith("jaxconv/impls/") for c in callers), callers


def test_no_module_imports_another_modules_private_names():
    private = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jaxconv"):
                # _checks is the package's shared-checks module: its own name is private, its contents not
                private += [f"{_module_name(path)}: {node.module}.{a.name}" for a in node.names
                            if a.name.startswith("_") and a.name != "_checks"]  # fmt: skip
    assert not private, private


def test_the_code_states_rules_and_leaves_measurements_to_the_docs():
    # Dated timings, speed-ups and host names belong in docs/performance.md, which the code points to.
    log = re.compile(
        r"20\d\d-[01]\d-[0-3]\d|\b\d+(\.\d+)? ?(ms|us|µs)\b|\b\d+\.\d+x\b|\d-\d+(\.\d+)?x\b|Zen \d|EPYC|Ice Lake"
    )
    found = [
        f"{p.relative_to(PACKAGE.parent)}:{i}: {line.strip()}"
        for p in PACKAGE.rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if log.search(line)
    ]
    assert not found, "\n".join(found)
