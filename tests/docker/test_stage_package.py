"""docker/stage_package.py copies exactly the files a distribution's RECORD lists."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("odc_stage_package", DOCKER / "stage_package.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


sp = _load()


def fake_venv(root: Path) -> Path:
    site = root / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "pkg" / "__pycache__").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("x = 1\n")
    (site / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00pyc")
    (site / "other").mkdir()
    (site / "other" / "__init__.py").write_text("")  # a dependency: must not be staged
    (root / "venv" / "bin").mkdir()
    (root / "venv" / "bin" / "tool").write_text("#!/venv/bin/python\n")
    info = site / "my_dist-1.0.dist-info"
    info.mkdir()
    (info / "RECORD").write_text(
        "pkg/__init__.py,sha256=abc,6\n"
        "pkg/__pycache__/__init__.cpython-311.pyc,,\n"
        '"pkg/missing, with comma.py",,\n'
        "../../../bin/tool,sha256=def,20\n"
        "my_dist-1.0.dist-info/RECORD,,\n"
    )
    return site


def test_stages_record_files_at_their_absolute_paths(tmp_path: Path) -> None:
    site = fake_venv(tmp_path)
    out = tmp_path / "stage"
    assert sp.stage(site, "my-dist", out) == 4
    staged = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    base = str(site.relative_to(site.anchor))
    assert staged == sorted([
        f"{base}/pkg/__init__.py",
        f"{base}/pkg/__pycache__/__init__.cpython-311.pyc",
        f"{base}/my_dist-1.0.dist-info/RECORD",
        str((tmp_path / "venv" / "bin" / "tool").relative_to(tmp_path.anchor)),
    ])


def test_missing_distribution_is_named(tmp_path: Path) -> None:
    site = fake_venv(tmp_path)
    with pytest.raises(SystemExit, match="want one nope dist-info"):
        sp.stage(site, "nope", tmp_path / "stage")
