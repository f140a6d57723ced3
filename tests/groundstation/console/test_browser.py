"""The console in a real browser (Debian's chromium, headless, driven by selenium) on a
running constellation: a real mosquitto, ``groundstation serve --http`` and three
``flightsw node`` processes, one of them started with a low state of charge.

It sees the satellites move on the map, sees the battery alarm and acknowledges it,
submits a job from the page and sees its result, and sends a signed ``pause`` that the
node acknowledges. Screenshots go to ``$ODC_ARTIFACTS/console`` (CI keeps them), else to
the test's temporary directory. Skips, naming what is missing, without chromium.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import api, artifacts, chrome, click, satellites_move, wait
from mosquitto import MosquittoProcess
from node_harness import DIGITS
from procs import Procs

from flightsw.broker import free_port
from flightsw.bus.mqtt import MqttBus
from flightsw.clock import WallClock
from groundstation.client import GroundClient

pytestmark = [pytest.mark.mqtt, pytest.mark.slow]

EPOCH = "2026-03-20T00:00:00Z"
TOKEN = "browser-test-operator"


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path / "procs", epoch=EPOCH, scale=10.0)
    yield p
    p.close()


async def test_console_in_chromium(
    mosquitto: MosquittoProcess, procs: Procs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selenium.webdriver.common.by import By

    shots = artifacts(tmp_path)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs.ground(mosquitto.url, tmp_path / "archive", extra=[
        "--http", f"127.0.0.1:{port}", "--operator-token", TOKEN,
        "--command-key-pattern", "{node}-cmd-dev",  # no --station: always in contact
    ])
    fast = ["--telemetry-period", "5", "--physics-step", "5"]
    for i, (node, extra) in enumerate((
        ("sat-a", fast),
        ("sat-b", fast),
        ("sat-low", [*fast, "--initial-soc", "0.32"]),  # floor 0.30: a yellow battery alarm
    )):
        monkeypatch.setenv("ODC_COMMAND_KEY", f"{node}-cmd-dev")
        procs.node(mosquitto.url, node, "jetson-orin-nano-super", arg_latitude=120.0 * i,
                   extra=extra)
    # the ground and its console up (slow to import on a loaded machine)
    await asyncio.to_thread(wait, "the console's HTTP server", lambda: api(url, "/api/session"), 90)
    async with (
        MqttBus(mosquitto.url, client_id="browser-test", clean_start=True) as bus,
        GroundClient(bus, WallClock(), client_id="browser-test", timeout_s=30) as gc,
    ):
        await gc.upload_model(DIGITS)  # the page's submit form offers what the ground holds

    drv = chrome()
    try:
        drv.get(f"{url}/#token={TOKEN}")

        def js(script: str) -> Any:
            return drv.execute_script(script)

        # satellites on the map, moving
        satellites_move(drv, 3, 40)
        assert drv.find_element(By.ID, "map").get_attribute("data-sats") == "3"
        drv.save_screenshot(str(shots / "map.png"))

        # the battery alarm of the low node, acknowledged by the operator
        row = wait("the battery alarm of sat-low", lambda: drv.find_element(
            By.CSS_SELECTOR, "#alarms tr[data-id^='sat-low:battery']"), 40)
        assert "battery" in row.text and "SoC" in row.text
        drv.save_screenshot(str(shots / "alarm.png"))
        click(drv, "#alarms tr[data-id^='sat-low:battery'] button.ack")

        def acked() -> bool:
            listed = [a for a in api(url, "/api/alarms")["alarms"] if a["node"] == "sat-low"]
            events = api(url, "/api/events")["events"]
            return (all(a["acked"] for a in listed)
                    and any("acknowledged battery" in e["text"] for e in events))

        wait("the alarm acknowledged", acked, 15)

        # a job submitted from the page, and its result shown
        wait("the digits model in the submit form", lambda: drv.find_element(
            By.CSS_SELECTOR, "#submit-model option"), 15)
        click(drv, "#submit-fill")
        click(drv, "#submit-go")
        result = drv.find_element(By.ID, "submit-result")
        wait("the job's result on the page",
             lambda: result.get_attribute("data-state") == "done" and "argmax" in result.text,
             60)
        job_id = result.get_attribute("data-job")
        assert api(url, f"/api/jobs/{job_id}")["state"] == "done"
        drv.save_screenshot(str(shots / "job.png"))

        # a signed pause, acknowledged by the node, and the node paused
        click(drv, "#fleet tbody tr[data-node='sat-a'] td")
        wait("the command panel", lambda: drv.find_element(By.ID, "commands").is_displayed())
        wait("sat-a selected", lambda: js("return window.odc.selected") == "sat-a")
        click(drv, "#commands button[data-cmd='pause']")
        log = wait("the pause acknowledged", lambda: (
            li := drv.find_element(By.CSS_SELECTOR, "#cmd-log li")) and "ack ok" in li.text
            and li, 30)
        assert "signed" in log.text and "UNSIGNED" not in log.text
        wait("sat-a reported paused",
             lambda: api(url, "/api/nodes/sat-a")["telemetry"]["paused"], 30)
        drv.execute_script("window.scrollTo(0, 0)")
        await asyncio.sleep(0.5)  # one more push drawn
        drv.save_screenshot(str(shots / "console.png"))
    except BaseException:
        drv.save_screenshot(str(shots / "failure.png"))
        for entry in drv.get_log("browser"):
            print("browser:", entry)
        print("ground log:", procs.log("ground")[-3000:])
        raise
    finally:
        drv.quit()
