"""ruff and mypy (strict) are part of the test command, so a lint or type error fails the suite."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    result = _run("ruff", "check", "contactcard", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    result = _run("mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_readme_module_map_has_a_line_for_every_module() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    mapped = set(re.findall(r"^- `([a-z0-9_/]+)`: ", readme.split("### Module map", 1)[1], flags=re.MULTILINE))
    package = ROOT / "contactcard"
    modules = {str(p.relative_to(package).with_suffix("")) for p in package.rglob("*.py")}
    missing = sorted(m for m in modules if m not in mapped and m != "__init__")
    assert not missing, f"add a line for each to README.md's module map: {missing}"
    assert not mapped - modules, f"the module map names modules that are gone: {sorted(mapped - modules)}"
