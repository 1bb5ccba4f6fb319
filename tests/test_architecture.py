"""The shape of the code, checked: no import cycles, short constructors and functions, the layer contract, and
the shared vocabulary defined once. Each rule here is one a review found broken before."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.offline import PROJECT_DIR

# Where each tree's modules are importable from: the program from the project root; the policy pack (and
# check.py) from policies/, where `rules`, `settings` and `pack` are top-level modules.
ROOTS = {
    "components": PROJECT_DIR,
    "vocabulary": PROJECT_DIR,
    "tools": PROJECT_DIR,
    "policies": PROJECT_DIR / "policies",
}


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {"__main__": PROJECT_DIR / "__main__.py"}
    for tree, root in ROOTS.items():
        for path in sorted((PROJECT_DIR / tree).rglob("*.py")):
            if "venv" in path.parts:
                continue
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if parts and parts != ["__main__"]:
                modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def imported_modules(name: str, path: Path) -> Iterator[str]:
    """Every project module `name` imports, at the top or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                yield target


def import_graph() -> dict[str, set[str]]:
    return {name: set(imported_modules(name, path)) for name, path in MODULES.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_the_import_graph_sees_imports_inside_functions() -> None:
    graph = import_graph()
    assert "components.cluster.eks" in graph["components.platform"]  # imported inside cluster_layer()
    assert "rules.findings" in graph["rules.workload"]  # a relative import in the pack's package


def test_no_import_cycles_counting_imports_inside_functions() -> None:
    assert find_cycle(import_graph()) is None


def functions(path: Path) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef, ast.ClassDef | None]]:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node, None
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    yield f"{node.name}.{item.name}", item, node


def length(node: ast.AST) -> int:
    return int(getattr(node, "end_lineno", 0)) - int(getattr(node, "lineno", 0)) + 1


COMPONENT_BASES = {"ComponentResource", "Layer"}


def is_component(cls: ast.ClassDef) -> bool:
    names = {ast.unparse(base).split("[")[0].rsplit(".", 1)[-1] for base in cls.bases}
    return bool(names & COMPONENT_BASES)


def components_sources() -> list[Path]:
    return sorted((PROJECT_DIR / "components").rglob("*.py"))


def test_no_function_in_components_is_longer_than_100_lines() -> None:
    long = [
        f"{path.relative_to(PROJECT_DIR)}:{name} ({length(node)} lines)"
        for path in components_sources()
        for name, node, _ in functions(path)
        if length(node) > 100
    ]
    assert long == []


def test_component_constructors_read_like_a_table_of_contents() -> None:
    """A ComponentResource's __init__ (a Layer's build) is at most 60 lines: the work is in named builders."""
    found, long = 0, []
    for path in components_sources():
        for name, node, cls in functions(path):
            if cls is not None and is_component(cls) and node.name in ("__init__", "build"):
                found += 1
                if length(node) > 60:
                    long.append(f"{path.relative_to(PROJECT_DIR)}:{name} ({length(node)} lines)")
    assert found >= 10 and long == []


# Modules of the cluster layer: the only ones that may read the whole stack config.
CLUSTER_LAYER = ("components/cluster/", "components/config/", "components/gpu_pools.py", "components/platform.py")


def test_no_in_cluster_layer_takes_the_whole_platform_config() -> None:
    readers = [
        str(path.relative_to(PROJECT_DIR))
        for path in components_sources()
        if "components.config.platform" in set(imported_modules(module_of(path), path))
        and not str(path.relative_to(PROJECT_DIR)).startswith(CLUSTER_LAYER)
    ]
    assert readers == []


def module_of(path: Path) -> str:
    return next(name for name, p in MODULES.items() if p == path)


def test_mlplatform_is_an_ordered_list_of_layers_each_given_its_own_section() -> None:
    """After the cluster layer, each line of MlPlatform.__init__ is `Layer(name, None | config.<section>, handle,
    child)`."""
    tree = ast.parse((PROJECT_DIR / "components" / "platform.py").read_text())
    init = next(
        f
        for c in tree.body
        if isinstance(c, ast.ClassDef) and c.name == "MlPlatform"
        for f in c.body
        if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    )
    calls = [s.value for s in init.body if isinstance(s, ast.Expr) and isinstance(s.value, ast.Call)]
    layers = [c for c in calls if isinstance(c.func, ast.Name)]  # not super().__init__ or self.register_outputs
    assert len(layers) >= 3
    for call in layers:
        _name, section, handle, opts = call.args
        assert ast.unparse(handle) == "handle" and ast.unparse(opts) == "child" and not call.keywords
        assert ast.unparse(section) == "None" or (
            isinstance(section, ast.Attribute) and ast.unparse(section.value) == "config"
        ), ast.unparse(call)


def source_files() -> list[Path]:
    return [p for p in MODULES.values() if "tests" not in p.parts]


@pytest.mark.parametrize(
    ("literal", "home"),
    [
        ('"huggingface"', "vocabulary/workloads.py"),  # the KServe container fields
        ("pytorchReplicaSpecs", "vocabulary/workloads.py"),  # where a kind keeps its pod specs
        ('"rayclusters"', "vocabulary/workloads.py"),  # the kinds admission matches
        ('"ml-platform.io/pool"', "vocabulary/labels.py"),
        ('"nvidia.com/mig-"', "vocabulary/resources.py"),
        ('"training-critical"', "vocabulary/priorities.py"),
    ],
)
def test_the_shared_vocabulary_is_defined_once(literal: str, home: str) -> None:
    where = sorted(str(p.relative_to(PROJECT_DIR)) for p in source_files() if literal in p.read_text())
    assert where == [home]
