"""axe-core in the browser tests: every page a browser test visits is checked at WCAG 2.2 AA.

axe-core is vendored under tests/vendor/axe-core (no CDN); ``assert_accessible`` injects it
into the current page and fails with the rules, their impact and the offending nodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_22_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Run axe-core on the page as it is now; returns the violations (empty when clean)."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, not added as a <script>: the pages'
        # CSP (script-src 'self', scheduler/web/edge.py) refuses injected inline scripts.
        await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_22_AA
    )
    return list(result["violations"])


def describe(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        targets = [", ".join(n["target"]) for n in v["nodes"][:5]]
        lines.append(f"{v['id']} ({v['impact']}): {v['help']} -> {targets}")
    return "\n".join(lines)


async def assert_accessible(page: Any) -> None:
    violations = await axe_violations(page)
    assert not violations, f"axe-core, {page.url}:\n{describe(violations)}"
