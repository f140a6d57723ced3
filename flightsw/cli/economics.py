"""``flightsw economics``: is compute in orbit cheaper? Studies, reproductions, lifetimes.

* ``flightsw economics STUDY.toml [--json FILE] [--charts DIR] [--assumed]``: cost a fleet
  in orbit against the same compute on the ground; prints the table, writes JSON and the
  tornado and break-even PNGs (and the capacity decay when the study simulates).
* ``flightsw economics --reproduce [--json FILE]``: the published studies, recomputed.
* ``flightsw economics --lifetime SCENARIO.toml [--json FILE] [--chart PNG]``: a
  multi-year fluid run of a fleet: capacity, energy and inferences over time.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from flightsw.economics.charts import draw_break_even, draw_lifetime, draw_tornado
from flightsw.economics.report import (
    format_lifetime,
    format_reproductions,
    format_verdict,
    verdict_dict,
)
from flightsw.economics.reproductions import reproduce_all
from flightsw.economics.run import run_study
from flightsw.economics.study import load_study
from flightsw.exceptions import ConfigError
from flightsw.sim.lifetime import load_lifetime_scenario, run_lifetime

__all__ = ["register"]


def _write_json(path: str | None, data: Any) -> None:
    if path is None:
        return
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2, allow_nan=True) + "\n", "utf-8")
    print(f"wrote {out}")


def _study(args: argparse.Namespace) -> int:
    run = run_study(load_study(args.study), assumed=args.assumed)
    print(format_verdict(run.verdict))
    data = verdict_dict(run.verdict, run.tornado, run.curve)
    if run.lifetime is not None:
        data["lifetime"] = run.lifetime.as_dict()
    _write_json(args.json, data)
    if args.charts is not None:
        out = Path(args.charts)
        for p in (
            draw_tornado(run.tornado, run.verdict.ratio, run.verdict.title, out / "tornado.png"),
            draw_break_even(run.curve, run.verdict.title, out / "break_even.png"),
            *([draw_lifetime(run.lifetime, out / "capacity.png")] if run.lifetime else []),
        ):
            print(f"wrote {p}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    figures = reproduce_all()
    print(format_reproductions(figures))
    _write_json(args.json, [f._asdict() | {"error": f.error} for f in figures])
    return 0 if all(f.error < 0.05 for f in figures) else 1


def _lifetime(args: argparse.Namespace) -> int:
    result = run_lifetime(load_lifetime_scenario(args.lifetime))
    print(format_lifetime(result))
    _write_json(args.json, result.as_dict())
    if args.chart is not None:
        print(f"wrote {draw_lifetime(result, args.chart)}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.reproduce:
        return _reproduce(args)
    if args.lifetime is not None:
        return _lifetime(args)
    if args.study is None:
        raise ConfigError("give a STUDY.toml, --reproduce or --lifetime SCENARIO.toml")
    return _study(args)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "economics",
        help="cost of compute in orbit vs on the ground, from simulated operations",
        description="Cost a fleet in orbit against the same compute on the ground "
        "(docs/economics.md).",
    )
    what = parser.add_mutually_exclusive_group()
    parser.add_argument("study", nargs="?", metavar="STUDY.toml", help="a study file")
    what.add_argument("--reproduce", action="store_true",
                      help="recompute the published studies (exit 1 if one is off by 5 %%+)")
    what.add_argument("--lifetime", metavar="SCENARIO.toml",
                      help="run a lifetime scenario: capacity, energy, inferences over years")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    parser.add_argument("--charts", metavar="DIR",
                        help="study: write tornado.png, break_even.png (and capacity.png)")
    parser.add_argument("--chart", metavar="PNG", help="lifetime: write the capacity decay")
    parser.add_argument("--assumed", action="store_true",
                        help="study: use its assumed constants instead of simulating")
    parser.set_defaults(func=_dispatch)
