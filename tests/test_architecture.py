"""The layout's rules, checked on the source (docs/architecture.md): no import circle among
k3snode's modules — also not through imports inside functions or under ``TYPE_CHECKING`` —, no
module over the line limit, k3snode's own modules imported at the top, and only the heavy
libraries imported lazily."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "k3snode"
MAX_LINES = 400

# Libraries imported inside functions on purpose: slow to import and needed by one path only.
LAZY_LIBRARIES = {
    "pyroute2": "netlink through pyroute2 (≈ 60 ms, an asyncio loop); WireGuard and underlay only",
    "prometheus_client": "≈ 40 ms; /metrics starts after READY",
    "yaml": "PyYAML ≈ 20 ms; only paths that read or merge K3s's YAML",
    "cryptography": "X25519 for WireGuard keys; only WireGuard paths",
    "dns": "dnspython ≈ 50 ms; only servers that publish a registration name",
    "tomllib": "Python ≥ 3.11 / tomli before: chosen by version where the file is read",
    "tomli": "Python < 3.11",
    "ssl": "≈ 28 M instructions (~7 ms) of import; only HTTPS requests (echo services, the Tailscale "
    "script, an https metadata_endpoint) — the metadata path is plain HTTP (discovery/wire.py)",
    "difflib": "≈ 1–1.5 ms of import (with heapq) on every command's start-up path (k3snode.suggest); "
    'only a mistake\'s "did you mean" needs it',
}

# k3snode modules imported inside a function, each with the measured reason. (The CLI's
# importlib of the command being run, by its COMMANDS table, is the one dynamic import.)
LAZY_OWN = {
    # (importing module, imported module): reason
    ("k3snode.cli", "k3snode.config.schema"): "only a command's --help needs the settings schema; "
    "`k3snode --version` and the top-level help must not pay for it (issue 14: ≤ python + 30 ms)",
    ("k3snode.cli", "k3snode.logs"): "logging and k3snode.logs cost ≈ 15 ms; `--version` and "
    "`--help` exit while parsing, before logging is set up",
    ("k3snode.daemon.loop", "k3snode.registration.keeper"): "only servers that publish a "
    "registration name need it (≈ 4 ms of imports before READY=1 otherwise)",
    ("k3snode.daemon.observe", "k3snode.health.registry"): "the observers' modules (the meshes' "
    "health code) cost ≈ 26 ms of imports on top of the daemon's; the first look is after READY=1",
    ("k3snode.daemon.observe", "k3snode.mesh.underlay.checks"): "≈ 26 ms (WireGuard's modules); "
    "only after READY=1 and only when the underlay is on",
    ("k3snode.daemon.services", "k3snode.health.server"): "http.server imports http.client, "
    "email and ssl: ≈ 38 ms that K3s's start need not wait for; the port is bound before READY",
    ("k3snode.pipeline", "k3snode.mesh.tailscale.bringup"): "Tailscale's modules cost ≈ 10 ms "
    "of imports (tempfile, subprocess, its types); only mesh = tailscale nodes pay for them",
    ("k3snode.pipeline", "k3snode.mesh.tailscale.status"): "as mesh.tailscale.bringup",
    ("k3snode.k3s.secrets", "k3snode.mesh.tailscale.up_args"): "as mesh.tailscale.bringup: the "
    "vpn-auth line is written only for mesh = tailscale",
    ("k3snode.discovery.providers.vmware", "k3snode.discovery.rpctool"): "recognising a cloud "
    "imports every provider; subprocess and shutil (zlib, bz2, lzma) cost a bare-metal detect "
    "≈ 3 ms",
    ("k3snode.discovery", "k3snode.discovery.http"): "bare metal with echo off (the default) "
    "speaks no HTTP: the client, its wire format and selectors cost a bare-metal detect ≈ 3 ms",
    ("k3snode.discovery", "k3snode.discovery.echo"): "as discovery.http: echo is opt-in",
    ("k3snode.daemon.longpoll", "k3snode.discovery.http"): "as discovery.http: only a cloud "
    "with a change signal (GCP) is watched",
    ("k3snode.daemon.passes", "k3snode.mesh.underlay.keeper"): "≈ 28 ms (WireGuard's modules); "
    "only nodes with the underlay on pay for it before READY=1",
}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> list[tuple[str, bool, int]]:
    """(k3snode module imported, at module level?, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = set()
    for node in tree.body:  # module level, also inside a top-level if/try (TYPE_CHECKING, tomli)
        if isinstance(node, (ast.If, ast.Try)):
            top.update(id(n) for n in ast.walk(node))
        top.add(id(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
            targets = subs if len(subs) == len(node.names) else [base, *subs]
        else:
            continue
        for target in targets:
            found.append((target, id(node) in top, node.lineno))
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, path in MODULES.items():
        for target, _top, _line in _imports(name, path):
            if target in MODULES and target != name:
                graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_the_walk_sees_the_package():
    assert "k3snode.cli" in MODULES and "k3snode.pipeline" in MODULES
    assert len(MODULES) > 50
    graph = _graph()
    assert "k3snode.config.model" in graph["k3snode.config.load"]


def test_the_cycle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    cycles = _cycles(_graph())
    assert cycles == [], "import circles: " + "; ".join(" ↔ ".join(c) for c in cycles)


def test_config_knows_nothing_of_k3s_or_the_rest():
    """The settings package is a leaf: it may use small helpers, never K3s's rules, the
    pipeline, the daemon or a mesh."""
    allowed = ("k3snode.config", "k3snode.addresses", "k3snode.envfile", "k3snode.secret",
               "k3snode.suggest", "k3snode.errors", "k3snode.discovery.providers",
               "k3snode.record")  # fmt: skip
    graph = _graph()
    bad = [
        f"{name} imports {target}"
        for name in graph
        if name.startswith("k3snode.config")
        for target in graph[name]
        if not target.startswith(allowed)
    ]
    assert bad == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_size(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name]}: {lines} lines (limit {MAX_LINES}); split it"


def test_imports_at_module_top():
    """Imports are at the top (so tools and readers can follow them); inside a function only
    the heavy libraries in LAZY_LIBRARIES and the k3snode pairs in LAZY_OWN."""
    bad = []
    for name, path in sorted(MODULES.items()):
        for target, top, line in _imports(name, path):
            if top:
                continue
            root = target.split(".")[0]
            if root == "k3snode":
                if (name, target) not in LAZY_OWN:
                    bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {target}")
            elif root not in LAZY_LIBRARIES:
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {target}")
    assert bad == [], "imports inside functions:\n" + "\n".join(bad)


def test_lazy_own_list_is_current():
    """Every LAZY_OWN entry still names an import inside a function (no stale excuses)."""
    seen = {
        (name, target)
        for name, path in MODULES.items()
        for target, top, _line in _imports(name, path)
        if not top
    }
    assert set(LAZY_OWN) <= seen


def test_records_have_docstrings():
    """Every record (``@record``) says what it is."""
    bad = []
    for path in MODULES.values():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.ClassDef)
                and ast.get_docstring(node) is None
                and any(ast.unparse(d).startswith("record") for d in node.decorator_list)
            ):
                bad.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.name}")
    assert bad == [], "records without a docstring:\n" + "\n".join(bad)


def test_records_not_dataclasses():
    """k3snode's records use ``k3snode.record`` (same surface, ≈ 7× cheaper to define; the
    reason is measured in its docstring): ``dataclasses`` would cost its import and ≈ 0.6 ms
    per class on every start."""
    bad = [
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for name, path in MODULES.items()
        if name != "k3snode.record"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if (isinstance(node, ast.Import) and any(a.name == "dataclasses" for a in node.names))
        or (isinstance(node, ast.ImportFrom) and node.module == "dataclasses")
    ]
    assert bad == [], "dataclasses imported (use k3snode.record):\n" + "\n".join(bad)
