"""The shape of the code: data flows one way between the packages, no module imports itself in a
circle (lazy imports inside functions count too), and no module grows past what one reads at once."""
import ast
import collections
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("kernels", "store", "jobs", "campaign")
MAX_LINES = 400

# what each package may import of the others: kernels are pure, the store knows kernels' numerics
# only, jobs compute into the store, the campaign plans and runs jobs (as programs, by name)
MAY_IMPORT = {"kernels": set(), "store": {"kernels"}, "jobs": {"kernels", "store"},
              "campaign": {"kernels", "store"}}
# within the campaign, the configuration is the lowest layer (it checks a potential file, what a
# feature set reads and a PyG convolution's name through the kernels that know them)
LOWEST = {"campaign.values": set(), "campaign.schema": {"campaign.values"},
          "campaign.config": {"campaign.schema", "campaign.values", "kernels.eam", "kernels.features",
                              "kernels.pyg_stack"}}


def _modules() -> dict[str, pathlib.Path]:
    mods = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
            mods[name.removesuffix(".__init__")] = f
    return mods


def _imports(mods: dict) -> dict[str, set[str]]:
    """Project modules each module imports, anywhere in it."""
    graph = collections.defaultdict(set)
    for name, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # 'from package import module' imports the module; 'from module import name', the module
                targets = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                           for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in mods and t != name}
    return graph


def test_packages_import_only_the_layers_below_them():
    graph = _imports(_modules())
    wrong = [(m, t) for m, targets in graph.items() for t in targets
             if t.split(".")[0] != m.split(".")[0] and t.split(".")[0] not in MAY_IMPORT[m.split(".")[0]]]
    assert not wrong, f"imports against the flow kernels -> store -> jobs, campaign: {wrong}"
    for module, allowed in LOWEST.items():
        assert graph[module] <= allowed, f"{module} imports {graph[module] - allowed}"


def test_no_module_imports_itself_in_a_circle():
    graph = _imports(_modules())
    state, cycles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, f"import circles: {cycles}"


@pytest.mark.parametrize("package", PACKAGES + ("tests", "bench"))
def test_modules_stay_readable_in_one_sitting(package):
    long = {str(f.relative_to(ROOT)): n for f in (ROOT / package).rglob("*.py")
            if (n := len(f.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_the_readme_is_a_front_door_whose_links_lead_somewhere():
    """README.md stays short (the rest lives in docs/, built strictly by .ci/run) and every relative link
    in it names a file of the repository."""
    import re

    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)]+)\)", text) if "://" not in target]
    assert links and all((ROOT / target).exists() for target in links), links
