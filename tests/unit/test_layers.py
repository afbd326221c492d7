"""The import graph: gateway.core stands on nothing of ours above it, no package imports back up, and
`gateway serve` loads no agent, consumer or model client."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Lower layers first; a module may import its own layer and the ones below, never one above.
LAYERS = ["gateway.core", "connectors", "consumers", "agents", "gateway"]
#: The allowed arrows between packages (the composition root `gateway` may import everything).
ALLOWED = {
    "gateway.core": set(),
    "connectors": {"gateway.core"},
    "agents": {"gateway.core", "connectors"},
    "consumers": {"gateway.core", "connectors", "agents"},
    "gateway": {"gateway.core", "connectors", "consumers", "agents"},
}


def package_of(module: str) -> str | None:
    if module == "gateway.core" or module.startswith("gateway.core."):
        return "gateway.core"
    top = module.split(".")[0]
    return top if top in ALLOWED else None


def imports(path: Path) -> set[str]:
    """Modules imported at module level or in functions (TYPE_CHECKING blocks included: they are arrows too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def arrows() -> set[tuple[str, str, str]]:
    out = set()
    for pkg_dir in ("gateway", "connectors", "consumers", "agents"):
        for path in (ROOT / pkg_dir).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            source = package_of(module)
            for target in {package_of(m) for m in imports(path)} - {None, source}:
                assert source is not None
                assert target is not None
                out.add((source, target, module))
    return out


def test_no_arrow_runs_back_up() -> None:
    wrong = sorted(f"{m} ({s} -> {t})" for s, t, m in arrows() if t not in ALLOWED[s])
    assert wrong == []


def test_the_core_imports_nothing_of_ours_above_it() -> None:
    assert [m for s, _, m in arrows() if s == "gateway.core"] == []
    assert len(list((ROOT / "gateway" / "core").rglob("*.py"))) > 15


def test_serve_loads_no_agent_consumer_or_model_client() -> None:
    program = (
        "import sys\n"
        "from gateway import cli\n"
        "cli._parser()\n"
        "import gateway.http, gateway.commands.serve, connectors\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('agents', 'consumers', 'openai'))))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []
