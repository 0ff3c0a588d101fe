"""The architecture as written down: docs/architecture.md's picture is the code's, and the
import-linter contracts in pyproject.toml hold today and catch a forbidden import."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _drawer() -> ModuleType:
    path = ROOT / "docs/architecture.py"
    spec = importlib.util.spec_from_file_location("docs_architecture", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=cwd,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_committed_picture_is_drawn_from_todays_imports() -> None:
    drawer = _drawer()
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    assert drawer.BEGIN in text and drawer.END in text
    assert drawer.redrawn(text) == text, "the picture is stale: run `make architecture`"


def test_the_picture_shows_the_use_case_layers() -> None:
    text = (ROOT / "docs/architecture.md").read_text(encoding="utf-8")
    # The read side is imported, never imports another use case.
    assert "usecases_booking --> usecases_calendar" in text
    assert "usecases_calendar -->" not in text
    assert "web --> usecases" in text


def test_the_contracts_hold_on_the_code(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "scheduler", tmp_path / "scheduler")
    done = _lint_imports(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_a_forbidden_import_breaks_the_contracts(tmp_path: Path) -> None:
    """The domain reaching into the store: the layers, the pure-domain rule and the
    no-cycles rule all fail, and the offending line is named."""
    shutil.copytree(ROOT / "scheduler", tmp_path / "scheduler")
    pure = tmp_path / "scheduler/domain/calendar.py"
    pure.write_text(pure.read_text(encoding="utf-8") + "from scheduler.db import tables\n")
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "The domain imports nothing of the project but itself and the kernel BROKEN" in (
        done.stdout
    )
    assert "scheduler.domain.calendar -> scheduler.db.tables" in done.stdout


def test_a_use_case_importing_a_sibling_above_it_breaks_the_contracts(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "scheduler", tmp_path / "scheduler")
    offers = tmp_path / "scheduler/usecases/waitlist/offers.py"
    offers.write_text(
        offers.read_text(encoding="utf-8") + "from scheduler.usecases.lottery import draw\n"
    )
    done = _lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "scheduler.usecases.waitlist is not allowed to import scheduler.usecases.lottery" in (
        done.stdout
    )
