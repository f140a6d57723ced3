"""Shared bits of the benchmarks: argument parsing and JSON output."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def emit(result: dict[str, Any], as_json: bool) -> None:
    result.setdefault("python", platform.python_version())
    if as_json:
        json.dump(result, sys.stdout, indent=1, sort_keys=True)
        sys.stdout.write("\n")
    else:
        for k, v in result.items():
            print(f"{k:>28}: {v}")
