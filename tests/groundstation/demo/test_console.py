"""``flightsw demo`` starts the operations console: its URL (with the operator token) is
printed, the page's API lists the demo's nodes while it runs, and /metrics parses."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.slow


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        body = r.read().decode()
        return json.loads(body) if r.headers.get_content_type() == "application/json" else body


async def test_demo_serves_the_console(tmp_path: Path) -> None:
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, TMPDIR=str(tmp_path / "tmp"), PYTHONUNBUFFERED="1", NO_COLOR="1")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flightsw.cli", "demo", "--out", str(tmp_path / "out"),
        "--nodes", "2", "--minutes", "0.4", "--time-scale", "200", "--http", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=ROOT,
        start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(90):
            while True:
                line = (await proc.stdout.readline()).decode()
                assert line, "demo exited before printing the console's URL"
                if m := re.search(r"console: (http://127\.0\.0\.1:\d+/)#token=(\S+)", line):
                    url, token = m.groups()
                    break
        assert len(token) >= 16
        session = await asyncio.to_thread(_get, url + "api/session")
        assert session["commands_signed"] is True  # the demo's nodes take signed commands

        async def nodes() -> list[dict[str, Any]]:
            while True:
                got = (await asyncio.to_thread(_get, url + "api/nodes"))["nodes"]
                if len(got) == 2 and all("soc" in n for n in got):
                    return list(got)
                await asyncio.sleep(0.5)

        rows = await asyncio.wait_for(nodes(), 60)
        assert len({r["node"] for r in rows}) == 2 and all(r["limits"] for r in rows)
        text = await asyncio.to_thread(_get, url + "metrics")
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        assert len(fams["odc_node_soc_ratio"].samples) == 2
        assert fams["odc_ground_messages_ingested"].samples[0].value > 0
        await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
