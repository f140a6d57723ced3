"""Helpers of the console's browser tests: Debian's chromium (headless) under selenium,
polling with a deadline, clicks that survive a re-rendered table, the JSON API."""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

__all__ = ["api", "artifacts", "chrome", "click", "wait"]


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", browser), ("chromedriver", driver))
                               if p is None)
        pytest.skip(f"{missing} not installed (run .ci/browser.sh: Debian chromium, "
                    "chromium-driver)")
    return browser, driver


def chrome() -> Any:
    """A headless chromium driven by selenium (skips, naming what is missing, without)."""
    browser, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1600,1500", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    return webdriver.Chrome(service=Service(executable_path=driver_path), options=opts)


def artifacts(tmp_path: Path, sub: str = "console") -> Path:
    """``$ODC_ARTIFACTS/<sub>`` (CI keeps it), else the test's temporary directory."""
    root = os.environ.get("ODC_ARTIFACTS")
    out = Path(root) / sub if root else tmp_path / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


def wait(what: str, fn: Callable[[], T | None], timeout: float = 30.0, every: float = 0.2) -> T:
    """``fn()`` until it returns something true; fails naming ``what`` and the last seen."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            got = fn()
        except Exception as exc:  # the page may be mid-update: try again
            last = exc
        else:
            if got:
                return got
            last = got
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what} (last seen: {last!r})")


_CLICK = """
const el = document.querySelector(arguments[0]);
if (!el) return "missing";
const r = el.getBoundingClientRect();
if (r.width === 0 || r.height === 0 || el.disabled) return "not clickable";
el.click();
return "clicked";
"""


def click(drv: Any, css: str) -> None:
    """Click the element ``css`` names once it is shown and enabled. Found and clicked in
    one script in the page: the tables are redrawn as updates arrive (several times a
    second), so an element found by one WebDriver call can be gone by the next one (a
    loaded host saw only stale elements for 15 s)."""
    def once() -> str | None:
        got = str(drv.execute_script(_CLICK, css))
        return got if got == "clicked" else None

    wait(f"a click on {css}", once, 15)


def satellites_move(drv: Any, count: int, appear_s: float) -> None:
    """Wait for ``count`` satellites drawn on the console's map, then for every one of them
    to move by more than 2 px (the page pushes positions as telemetry arrives)."""
    def drawn() -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = drv.execute_script("return window.odc.drawn")
        return got

    first = wait(f"{count} satellites on the map",
                 lambda: (d := drawn()) and len(d) == count and d, appear_s)
    before = {d["node"]: (d["x"], d["y"]) for d in first}

    def moved() -> bool:
        now = {d["node"]: (d["x"], d["y"]) for d in drawn()}
        return all(abs(now[n][0] - before[n][0]) + abs(now[n][1] - before[n][1]) > 2
                   for n in before)

    wait("every satellite to move on the map", moved, 30)


def api(url: str, path: str, token: str | None = None) -> Any:
    """GET ``url + path`` as JSON."""
    req = urllib.request.Request(url.rstrip("/") + path)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())
