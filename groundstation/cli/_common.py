"""Shared options and connection for ``groundstation`` client commands."""

from __future__ import annotations

import argparse
import contextlib
import uuid
from collections.abc import AsyncIterator

from flightsw.bus.mqtt import MqttBus
from flightsw.bus.url import default_broker_url
from flightsw.clock import WallClock
from groundstation.client import GroundClient

__all__ = ["add_broker_arg", "connect_client"]


def add_broker_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--broker",
        default=default_broker_url(),
        help="mqtt://[user:pass@]host:port (default: env ODC_BROKER, then mqtt://127.0.0.1:1883)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for the service to answer a request",
    )


@contextlib.asynccontextmanager
async def connect_client(args: argparse.Namespace) -> AsyncIterator[GroundClient]:
    client_id = f"gc-{uuid.uuid4().hex[:12]}"
    clock = WallClock()
    async with (
        MqttBus(
            args.broker, client_id=client_id, clean_start=True, persistent_session=False
        ) as bus,
        GroundClient(bus, clock, client_id=client_id, timeout_s=args.timeout) as gc,
    ):
        yield gc
