"""Command lines from sub-command modules and from an entry-point group."""

from __future__ import annotations

import argparse
import importlib.metadata
from typing import Any

import pytest

from flightsw.cliutil import dispatch

GROUP = "flightsw.commands.test"


def register_hello(sub: Any) -> None:
    p = sub.add_parser("hello", help="say hello")
    p.set_defaults(func=lambda args: 7)


def register_profiles_again(sub: Any) -> None:
    raise AssertionError("a built-in command must not be registered twice")


def _entry_points(monkeypatch: pytest.MonkeyPatch, *specs: tuple[str, str]) -> None:
    eps = importlib.metadata.EntryPoints(
        importlib.metadata.EntryPoint(name, value, GROUP) for name, value in specs
    )

    def fake(*, group: str) -> importlib.metadata.EntryPoints:
        return eps if group == GROUP else importlib.metadata.EntryPoints(())

    monkeypatch.setattr(dispatch.importlib.metadata, "entry_points", fake)


def _parser() -> argparse.ArgumentParser:
    return dispatch.build_parser(
        "flightsw", "test", "flightsw.cli", ("profiles",), entry_point_group=GROUP
    )


def test_entry_points_add_commands_after_the_built_in_ones(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    here = __name__
    _entry_points(
        monkeypatch,
        ("hello", f"{here}:register_hello"),
        ("profiles", f"{here}:register_profiles_again"),
    )
    parser = _parser()
    assert dispatch.run(parser, ["hello"], ()) == 7
    assert "profiles" in parser.format_help()
    assert capsys.readouterr().err == ""


def test_an_entry_point_that_cannot_be_imported_is_reported_and_left_out(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    _entry_points(monkeypatch, ("broken", "no_such_module_odc:register"))
    parser = _parser()
    err = capsys.readouterr().err
    assert "flightsw: command 'broken' (no_such_module_odc:register) is unavailable" in err
    assert "broken" not in parser.format_help()
    assert "profiles" in parser.format_help()


def test_the_installed_package_declares_flightsw_demo() -> None:
    found = importlib.metadata.entry_points(group=dispatch.COMMANDS_GROUP)
    assert [(ep.name, ep.value) for ep in found] == [("demo", "groundstation.cli.demo:register")]
