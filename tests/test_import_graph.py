"""The layers of jaxreid point down (issue #23; docs/architecture.md).

(a) The import graph of jaxreid/, read from the source with `ast` (imports inside functions
    count; `from jaxreid.pkg import x` is an edge to jaxreid.pkg.x when x is a module, else to
    the package's __init__, whose own imports are its edges), has no cycle. (The cycles it
    had all ran through config.validation's imports of the modules above it.)
(b) `jaxreid.config` is the bottom layer: it imports nothing else of jaxreid, and importing it
    and validating every shipped config (each documented argument of configs/*.py and every
    run of the grids in configs/grids/) loads neither JAX, Flax nor TensorFlow.
"""

from __future__ import annotations

import ast
import os
import pickle
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "jaxreid")


def module_name(path: str, root: str = ROOT) -> str:
    """'<root>/jaxreid/config/choices.py' -> 'jaxreid.config.choices' (a package: its name)."""
    relative = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join(relative)


def modules(root: str = PACKAGE) -> dict[str, str]:
    """{dotted module name: file} of every .py file under `root`."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                found[module_name(path, os.path.dirname(root))] = path
    return found


def _resolve(module: str, package_of: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = package_of.split(".")[: len(package_of.split(".")) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(name: str, path: str, known: set[str]) -> set[str]:
    """The jaxreid modules that module `name` (file `path`) imports, at any depth of its
    code (inside functions too)."""
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    is_package = path.endswith("__init__.py")
    package = name if is_package else name.rpartition(".")[0]
    edges = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(name, package, node)
            targets = []
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                targets.append(submodule if submodule in known else source)
        else:
            continue
        edges.update(t for t in targets if t in known and t != name)
    return edges


def import_graph(root: str = PACKAGE) -> dict[str, set[str]]:
    found = modules(root)
    known = set(found)
    return {name: imports(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle [a, b, ..., a] of `graph` ({node: successors}), or None (depth-first)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    stack: list[str] = []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return stack[stack.index(successor) :] + [successor]
            if successor not in state:
                cycle = visit(successor)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_on_hand_made_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": set(), "c": {"c"}}) == ["c", "c"]


def test_imports_are_read_inside_functions_and_from_packages(tmp_path):
    package = tmp_path / "jaxreid"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from jaxreid.sub.b import B\n")
    (package / "sub" / "b.py").write_text("B = 1\n")
    (package / "a.py").write_text(
        "def f():\n    from jaxreid.sub import b, B\n    import jaxreid.c\nfrom . import c\n"
    )
    (package / "c.py").write_text("import os\n")
    found = modules(str(package))
    graph = {n: imports(n, p, set(found)) for n, p in found.items()}
    assert graph["jaxreid.a"] == {"jaxreid.sub.b", "jaxreid.sub", "jaxreid.c"}
    assert graph["jaxreid.sub"] == {"jaxreid.sub.b"}


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_config_imports_nothing_else_of_jaxreid():
    graph = import_graph()
    outside = {
        (name, target)
        for name, targets in graph.items()
        if name == "jaxreid.config" or name.startswith("jaxreid.config.")
        for target in targets
        if not target.startswith("jaxreid.config")
    }
    assert not outside, f"jaxreid.config must stay the bottom layer; it imports {sorted(outside)}"


# --- (b) validating every shipped config loads no JAX --------------------------------------


def shipped_specs() -> list[str]:
    """configs/<file>.py:<arg> for every documented argument (tests/test_config.SHIPPED)."""
    from test_config import SHIPPED

    return [f"configs/{name}:{arg}" for name, args in SHIPPED.items() for arg in args]


def grid_specs() -> list[str]:
    """Every grid the tests and docs name: the paper grids' tables (tests/test_paper_grids),
    the synthetic and classical grids' arguments and every grid spec written in the docs."""
    import test_docs
    from test_paper_grids import HAFNER, TEKELI, TEKELI_TABLES

    specs = [f"{HAFNER}:table{n}" for n in range(2, 20)]
    specs += [f"{HAFNER}:figure{n}" for n in (35, 36, 37)] + [f"{HAFNER}:journal_table3"]
    specs += [f"{TEKELI}:{arg}" for arg, _, _ in TEKELI_TABLES]
    synthetic = os.path.join(ROOT, "configs", "grids", "synthetic.py")
    specs += [f"{synthetic}:{a}" for a in ("methods", "table11", "table12", "table15")]
    specs += [f"{synthetic}:{a}" for a in ("embedding", "ablation")]
    classical = os.path.join(ROOT, "configs", "grids", "classical.py")
    specs += [f"{classical}:{a}" for a in ("synthetic,networks", "synthetic_ir", "biwi")]
    specs += [f"{classical}:{a}" for a in ("robotpku", "sysu")]
    for path in test_docs.doc_files():
        with open(path, encoding="utf-8") as f:
            for spec, arg in test_docs._SPEC.findall(f.read()):  # pylint: disable=protected-access
                if test_docs.is_grid(spec):
                    specs.append(spec + (f":{arg}" if arg else ""))
    return sorted(set(specs))


@pytest.fixture(scope="module")
def grid_configs(tmp_path_factory) -> str:
    """A pickle of [(name, config as a dict)] of every run of every grid: the grids are built
    here (they import jaxreid.experiments), the configs validated in a fresh process."""
    from jaxreid import experiments

    configs = []
    for spec in grid_specs():
        for experiment in experiments.load_grid(spec).experiments:
            config = experiment.config.copy_and_resolve_references()
            configs.append((f"{spec} {experiment.name}", config.to_dict()))
    path = tmp_path_factory.mktemp("grids") / "configs.pkl"
    path.write_bytes(pickle.dumps(configs))
    return str(path)


VALIDATE_ALL = """
import pickle, sys
import ml_collections
import jaxreid.config as config_lib

specs, grid_file = sys.argv[1].split(";"), sys.argv[2]
for spec in specs:
    config = config_lib.load_config(spec)
    config_lib.validate(config, num_devices=8)
with open(grid_file, "rb") as f:
    runs = pickle.load(f)
for name, values in runs:
    config_lib.validate(ml_collections.ConfigDict(values), num_devices=1)
print(len(specs), len(runs), [m for m in ("jax", "flax", "tensorflow") if m in sys.modules])
"""


def test_validating_every_shipped_config_loads_no_jax(grid_configs):
    specs = shipped_specs()
    out = subprocess.run(
        [sys.executable, "-c", VALIDATE_ALL, ";".join(specs), grid_configs],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,  # python -c puts the current directory first: this checkout's jaxreid
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    num_specs, num_runs, loaded = out.stdout.split(maxsplit=2)
    assert int(num_specs) == len(specs) and int(num_runs) > 100, out.stdout
    assert loaded.strip() == "[]", f"validation loaded {loaded.strip()}"
