"""Docker engine helpers shared by the container tests (compose and swarm)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

__all__ = ["docker_unavailable", "require_docker", "run"]


def docker_unavailable(*tools: str) -> str | None:
    """Why the engine (and ``tools``) cannot be used here, or None."""
    for tool in ("docker", *tools):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run .ci/docker.sh)"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30,
                              check=False)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if done.returncode != 0:
        return f"no docker engine is reachable (`docker info`: {done.stderr.strip()[:200]})"
    return None


def require_docker(*tools: str) -> None:
    """Skip naming why without an engine; fail instead when ``CI`` is set (CI runs
    .ci/docker.sh first, so an engine must be there)."""
    reason = docker_unavailable(*tools)
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason + " and CI is set", pytrace=False)
    pytest.skip(reason)


def run(*args: str, timeout: float = 120, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``args`` run to the end; with ``check``, a non-zero exit fails naming its stderr."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=env)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done
