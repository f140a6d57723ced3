"""Packages point one way (docs/architecture.md, STYLE.md "Habits").

* nothing in ``flightsw`` imports ``groundstation`` (what both need lives in ``flightsw``;
  what needs both, the demo, lives in ``groundstation``);
* no module of ``flightsw``, ``groundstation`` or ``hardware_profiles`` imports another
  top-level package's private parts: a dotted path component starting with ``_`` (dunders
  such as ``__future__`` or ``__main__`` excepted), as a module or as an imported name.

Every ``.py`` file is parsed with :mod:`ast`; ``import`` and ``from ... import`` statements
count wherever they are (inside functions, ``if TYPE_CHECKING:`` blocks, ``try:``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("flightsw", "groundstation", "hardware_profiles")


def imports(source: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """``(line, dotted name)`` of every absolute import in ``source``; ``from m import a``
    gives ``m.a`` (``a`` may be a module or a name: both are reached through ``m``)."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def violations(package: str, source: str, filename: str = "<source>") -> list[str]:
    """What a module of top-level ``package`` must not import, one line each."""
    found = []
    for line, name in imports(source, filename):
        parts = name.split(".")
        if package == "flightsw" and parts[0] == "groundstation":
            found.append(f"{filename}:{line}: flightsw imports {name}")
        elif parts[0] != package and any(_private(p) for p in parts[1:]):
            found.append(f"{filename}:{line}: private part of another package: {name}")
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_point_one_way(package: str) -> None:
    files = _modules(package)
    assert files, f"no modules found under {ROOT / package}"
    found = [
        v
        for path in files
        for v in violations(package, path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    ("package", "source", "bad"),
    [
        ("flightsw", "import groundstation", True),
        ("flightsw", "import groundstation.archive as a", True),
        ("flightsw", "from groundstation import archive", True),
        ("flightsw", "def f():\n    from groundstation.report import write_report\n", True),
        ("flightsw", "from flightsw.cli._orbit_args import parse", False),  # its own
        ("flightsw", "from . import _private", False),  # relative: its own package
        ("groundstation", "from flightsw.cli._dispatch import run", True),
        ("groundstation", "from flightsw.cli import _dispatch", True),
        ("groundstation", "import flightsw._x.y", True),
        ("groundstation", "from flightsw.broker import _check_port", True),
        ("groundstation", "from flightsw.cliutil.dispatch import run as _run", False),
        ("groundstation", "from __future__ import annotations", False),
        ("groundstation", "from groundstation.cli._common import add_broker_arg", False),
        ("hardware_profiles", "from flightsw.exceptions import ProfileError", False),
    ],
)
def test_the_check_itself(package: str, source: str, bad: bool) -> None:
    assert bool(violations(package, source)) is bad
