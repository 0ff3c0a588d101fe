"""Draw the package picture in docs/architecture.md from the code's imports.

`make architecture` runs it; tests/test_architecture.py redraws it in memory and fails
when the committed picture differs, so the picture cannot drift from the code. The
graph comes from grimp, the engine `lint-imports` checks the contracts with, so the
picture and the contracts read the same imports (including those inside functions).

Two pictures: the top-level packages (the use cases as one node `usecases`), then
the use-case packages among themselves. An edge
whose every import is one of the contracts' `ignore_imports` (waiting for another
branch to remove it) is drawn dashed.
"""

from __future__ import annotations

import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "architecture.md"
BEGIN = "<!-- architecture:begin: drawn by `make architecture` from the imports; do not edit -->"
END = "<!-- architecture:end -->"
PACKAGE = "scheduler"
USECASES = "usecases"
# Entry points first, then the layers top to bottom (the order nodes are declared in
# steers Mermaid's layout; the edges decide it).
ORDER = [
    "asgi",
    "app",
    "__main__",
    "web",
    "jobs",
    "observability",
    USECASES,
    "notify",
    "db",
    "settings",
    "domain",
    "kernel",
]
USECASE_ORDER = [
    {"lottery"},
    {"booking", "desk", "offices", "reports", "staff"},
    {"waitlist"},
    {"couples"},
    {"calendar", "policy", "privacy"},
]


def _package(module: str) -> str | None:
    """`scheduler.usecases.booking.lifecycle` -> `usecases.booking`; `scheduler.db.x` -> `db`."""
    parts = module.split(".")
    if len(parts) < 2:
        return None  # the root package's own __init__
    if parts[1] == USECASES and len(parts) > 2:
        return f"{USECASES}.{parts[2]}"
    return parts[1]


def _ignored() -> set[tuple[str, str]]:
    """Every `importer -> imported` the contracts ignore for now."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    out = set()
    for contract in config["tool"]["importlinter"]["contracts"]:
        for line in contract.get("ignore_imports", []):
            importer, _, imported = line.partition("->")
            out.add((importer.strip(), imported.strip()))
    return out


def edges(graph: grimp.ImportGraph) -> dict[tuple[str, str], bool]:
    """(from, to) -> True when every import behind the edge is an ignored one."""
    ignored = _ignored()
    pending: dict[tuple[str, str], bool] = defaultdict(lambda: True)
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = _package(importer), _package(imported)
            if a is None or b is None or a == b:
                continue
            pending[(a, b)] &= (importer, imported) in ignored
    return dict(pending)


def _node(name: str) -> str:
    return name.replace(".", "_").strip("_")


def _label(name: str) -> str:
    return name.removeprefix(f"{USECASES}.")


def mermaid(graph: grimp.ImportGraph) -> str:
    """Two flowcharts: the top-level packages (the use cases as one node), then the
    use-case packages among themselves."""
    found = edges(graph)
    outer: dict[tuple[str, str], bool] = defaultdict(lambda: True)
    inner: dict[tuple[str, str], bool] = {}
    for (a, b), pending in found.items():
        a_in, b_in = a.startswith(f"{USECASES}."), b.startswith(f"{USECASES}.")
        if a_in and b_in:
            inner[(a, b)] = pending
        else:
            outer[(USECASES if a_in else a, USECASES if b_in else b)] &= pending
    return "\n\n".join(
        [
            _flowchart(dict(outer), "Packages (`scheduler/`): an arrow is an import"),
            _flowchart(inner, "Use-case packages (`scheduler/usecases/`) among themselves"),
        ]
    )


def _flowchart(found: dict[tuple[str, str], bool], title: str) -> str:
    names = sorted({p for pair in found for p in pair}, key=_order)
    lines = [f"{title}:", "", "```mermaid", "flowchart TD"]
    lines.extend(f'    {_node(p)}["{_label(p)}"]' for p in names)
    for (a, b), pending in sorted(
        found.items(), key=lambda kv: (_order(kv[0][0]), _order(kv[0][1]))
    ):
        arrow = "-. pending .->" if pending else "-->"
        lines.append(f"    {_node(a)} {arrow} {_node(b)}")
    lines.append("```")
    return "\n".join(lines)


def _order(name: str) -> tuple[int, str]:
    """Layer order for the top level; the use-case packages in the order of their layers."""
    if name.startswith(f"{USECASES}."):
        short = _label(name)
        rank = next((i for i, layer in enumerate(USECASE_ORDER) if short in layer), 99)
        return (rank, short)
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def redrawn(text: str, graph: grimp.ImportGraph | None = None) -> str:
    """The document with the picture between the markers drawn afresh."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{DOC}: markers {BEGIN!r} … {END!r} not found")
    graph = graph or grimp.build_graph(PACKAGE, cache_dir=None)
    return f"{head}{BEGIN}\n{mermaid(graph)}\n{END}{tail}"


def main() -> int:
    sys.path.insert(0, str(ROOT))
    text = DOC.read_text(encoding="utf-8")
    new = redrawn(text)
    if new != text:
        DOC.write_text(new, encoding="utf-8")
        print(f"{DOC.relative_to(ROOT)}: picture redrawn")
    else:
        print(f"{DOC.relative_to(ROOT)}: picture already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
