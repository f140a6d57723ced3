"""The console of a running demo constellation in a real browser: one ``flightsw demo``
process (embedded broker, ground station with its ten stations, three nodes, the job
feeder and the console) and Debian's chromium, headless, driven by selenium.

The demo's third node starts 6 points above its depth-of-discharge floor (its plan, not a
test hook), so its battery alarm is up from the first telemetry. The test sees the three
satellites move on the map, acknowledges that alarm, submits a classifier job from the
page and sees its result (uplinked and downlinked in the demo's real contact windows), and
sends a signed ``pause`` that the node acknowledges; the land outlines and the ISLs the
nodes report are drawn. Screenshots go to
``$ODC_ARTIFACTS/console-demo`` (CI keeps them), else to the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from browser import api, artifacts, chrome, click, satellites_move, wait

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


async def _console_url(proc: asyncio.subprocess.Process, lines: list[str]) -> tuple[str, str]:
    assert proc.stdout is not None
    while True:
        line = (await proc.stdout.readline()).decode()
        assert line, "the demo exited before printing the console's URL:\n" + "".join(lines)
        lines.append(line)
        if m := re.search(r"console: (http://127\.0\.0\.1:\d+)/#token=(\S+)", line):
            return m.group(1), m.group(2)


async def _drain(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """Keep reading the demo's output so its pipe never fills."""
    assert proc.stdout is not None
    while line := await proc.stdout.readline():
        lines.append(line.decode())


@pytest.mark.timeout(600)
async def test_console_of_a_running_demo(tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    drv = chrome()  # skips here, before the demo starts, without chromium
    shots = artifacts(tmp_path, "console-demo")
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1", NO_COLOR="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightsw.cli", "demo", "--out", str(tmp_path / "out"),
        "--nodes", "3", "--minutes", "6", "--time-scale", "50", "--http", "127.0.0.1:0",
        "--plain",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env, cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    lines: list[str] = []
    drain: asyncio.Task[None] | None = None
    try:
        url, token = await asyncio.wait_for(_console_url(proc, lines), 120)
        drain = asyncio.create_task(_drain(proc, lines))
        await asyncio.to_thread(_drive, drv, By, url, token, shots)
        # the demo ends cleanly when asked: SIGINT, summary, archive, exit status 130
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 120) == 130
        await drain
        assert any("jobs completed:" in line for line in lines), "".join(lines[-30:])
    except BaseException:
        print("demo output:", "".join(lines[-60:]))
        log = tmp_path / "out" / "demo.log"
        if log.is_file():
            print("demo.log:", log.read_text()[-4000:])
        raise
    finally:
        drv.quit()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        if drain is not None:
            drain.cancel()


def _drive(drv: Any, By: Any, url: str, token: str, shots: Path) -> None:  # noqa: N803
    try:
        drv.get(f"{url}/#token={token}")

        def js(script: str) -> Any:
            return drv.execute_script(script)

        # the three satellites on the map, moving
        satellites_move(drv, 3, 60)
        assert js("return window.odc.tracks.size") == 3  # ground tracks from the orbits
        assert len(js("return window.odc.stations.stations")) == 10  # the demo's network
        assert js("return window.odc.landRings") > 100  # the shipped land outlines drawn
        # the train's links, as the nodes report them (363 km apart: in every range here)
        links = wait("the nodes' ISLs on the map", lambda: {
            (i["src"], i["dst"]) for i in js("return window.odc.isls") if i["kind"] == "link"}
            >= {("sat1", "sat2"), ("sat2", "sat3")} and js("return window.odc.isls"), 30)
        assert all(i["src"] < i["dst"] for i in links if i["kind"] == "link")  # once a pair
        drv.save_screenshot(str(shots / "map.png"))

        # sat3 starts just above its floor: its battery alarm, acknowledged by the operator
        row = wait("the battery alarm of sat3", lambda: drv.find_element(
            By.CSS_SELECTOR, "#alarms tr[data-id^='sat3:battery']"), 30)
        assert "SoC" in row.text
        drv.save_screenshot(str(shots / "alarm.png"))
        click(drv, "#alarms tr[data-id^='sat3:battery'] button.ack")

        def acked() -> bool:
            listed = [a for a in api(url, "/api/alarms")["alarms"]
                      if a["node"] == "sat3" and a["kind"] == "battery"]
            events = api(url, "/api/events")["events"]
            return (all(a["acked"] and a["acked_by"] for a in listed)
                    and any("acknowledged battery" in e["text"] for e in events))

        wait("the battery alarm acknowledged", acked, 15)

        # a classifier job submitted from the page, and its result shown
        models = api(url, "/api/models")["models"]
        digits = [m["model"] for m in models if m["inputs"][0]["shape"][-1] == 64]
        assert len(digits) == 1, models
        wait("the classifier in the submit form", lambda: drv.find_element(
            By.CSS_SELECTOR, f"#submit-model option[value='{digits[0]}']"), 15)
        js(f"document.querySelector('#submit-model').value = '{digits[0]}'")
        click(drv, "#submit-fill")
        click(drv, "#submit-go")
        result = drv.find_element(By.ID, "submit-result")
        wait("the job accepted", lambda: result.get_attribute("data-job"), 15)
        # it waits at the ground for a pass, runs, and comes down in a pass: the demo's
        # contact share is 27-61 %, so allow a few gaps (3 mission minutes per host second)
        wait("the job's result on the page",
             lambda: result.get_attribute("data-state") == "done" and "argmax" in result.text,
             150, 0.5)
        job_id = result.get_attribute("data-job")
        job = api(url, f"/api/jobs/{job_id}")
        assert job["state"] == "done" and job["node"] in ("sat1", "sat2", "sat3")
        assert len(job["outputs"]["label"]["data"]) == 1  # one example image: one label
        drv.save_screenshot(str(shots / "job.png"))

        # a signed pause, acknowledged by sat1, and sat1 then reports itself paused
        click(drv, "#fleet tbody tr[data-node='sat1'] td")
        wait("sat1 selected", lambda: js("return window.odc.selected") == "sat1")
        wait("the command panel", lambda: drv.find_element(By.ID, "commands").is_displayed())
        click(drv, "#commands button[data-cmd='pause']")
        log = wait("the pause acknowledged", lambda: (
            li := drv.find_element(By.CSS_SELECTOR, "#cmd-log li")) and "ack ok" in li.text
            and li, 30)
        assert "signed" in log.text and "UNSIGNED" not in log.text
        wait("sat1 reported paused",
             lambda: api(url, "/api/nodes/sat1")["telemetry"]["paused"], 30)
        drv.execute_script("window.scrollTo(0, 0)")
        drv.save_screenshot(str(shots / "console.png"))
    except BaseException:
        drv.save_screenshot(str(shots / "failure.png"))
        for entry in drv.get_log("browser"):
            print("browser:", entry)
        raise
