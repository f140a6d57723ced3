"""Telecommand HMAC and replay counter."""

from __future__ import annotations

from typing import Any

import pytest

from flightsw.protocol import Command, dump, parse
from flightsw.protocol.auth import CommandVerifier, sign_command

KEY = "node-7 secret key"


def _cmd(**over: Any) -> Command:
    fields: dict[str, Any] = {
        "cmd_id": "cmd-1", "name": "set_power_mode", "args": {"mode": "15W", "n": 2},
        "counter": 5, "t": 1_773_964_800.0,
    }
    return Command(**{**fields, **over})


def test_signed_command_verifies_and_advances_the_counter() -> None:
    signed = sign_command(_cmd(), KEY)
    assert signed.hmac is not None and len(signed.hmac) == 64
    assert _cmd().hmac is None  # signing returns a copy
    v = CommandVerifier(KEY)
    assert v.enabled
    assert v.check(signed) is None
    assert v.last_counter == 5


def test_a_signed_command_verifies_after_the_wire() -> None:
    signed = sign_command(_cmd(), KEY.encode())  # bytes key == str key
    received = parse(Command, dump(signed))
    assert CommandVerifier(KEY).check(received) is None


@pytest.mark.parametrize(
    "change",
    [
        {"name": "enter_safe"},
        {"args": {"mode": "25W", "n": 2}},
        {"args": {"mode": "15W", "n": 2, "extra": True}},
        {"counter": 6},
        {"cmd_id": "cmd-2"},
        {"t": 1_773_964_801.0},
    ],
    ids=lambda c: next(iter(c)),
)
def test_altered_field_is_rejected(change: dict[str, Any]) -> None:
    signed = sign_command(_cmd(), KEY)
    altered = signed.model_copy(update=change)
    v = CommandVerifier(KEY)
    reason = v.check(altered)
    assert reason is not None and reason.startswith("hmac: does not verify")
    assert v.last_counter == -1  # a rejected command does not move the counter


def test_missing_hmac_is_rejected() -> None:
    v = CommandVerifier(KEY)
    reason = v.check(_cmd())
    assert reason is not None and reason.startswith("hmac: missing")


def test_wrong_key_is_rejected() -> None:
    reason = CommandVerifier("another key").check(sign_command(_cmd(), KEY))
    assert reason is not None and reason.startswith("hmac: ")


def test_replayed_and_lower_counters_are_rejected() -> None:
    v = CommandVerifier(KEY)
    first = sign_command(_cmd(counter=10), KEY)
    assert v.check(first) is None
    replay = v.check(first)
    assert replay == "counter: 10 is not above the last accepted 10 (replayed command)"
    lower = v.check(sign_command(_cmd(counter=3, cmd_id="cmd-old"), KEY))
    assert lower is not None and lower.startswith("counter: 3 is not above the last accepted 10")
    assert v.check(sign_command(_cmd(counter=11, cmd_id="cmd-next"), KEY)) is None
    assert v.last_counter == 11


def test_verifier_resumes_from_a_stored_counter() -> None:
    v = CommandVerifier(KEY, last_counter=100)
    assert v.check(sign_command(_cmd(counter=100), KEY)) is not None
    assert v.check(sign_command(_cmd(counter=101), KEY)) is None


def test_no_key_accepts_everything() -> None:
    v = CommandVerifier(None)
    assert not v.enabled
    assert v.check(_cmd()) is None
    assert v.check(_cmd(hmac="00" * 32, counter=0)) is None
