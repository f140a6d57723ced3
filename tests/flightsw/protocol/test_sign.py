"""Sealed node messages: canonical bytes, MAC, replay window, sequence numbers across
restarts, and the last will taken once."""

from __future__ import annotations

from pathlib import Path

import msgpack
import pytest

from flightsw.exceptions import AuthError
from flightsw.protocol import JobResult, Status, topics
from flightsw.protocol.codec import decode, encode
from flightsw.protocol.sign import (
    Marks,
    ReplayWindow,
    Sealer,
    SequenceFile,
    Verifier,
    canonical,
    load_key,
    load_keys,
    mac,
)

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def sealer(tmp_path: Path, key: bytes = KEY) -> Sealer:
    return Sealer(key, SequenceFile(tmp_path / "auth.seq"))


def sealed(s: Sealer, topic: str, node: str = "sat-a", state: str = "online") -> dict:
    body = Status(node=node, state=state, t=1.5).model_dump(mode="python")  # type: ignore[arg-type]
    return decode(encode(s.seal(topic, body)))


def test_canonical_bytes_do_not_depend_on_key_order() -> None:
    a = {"kind": "x", "b": 1, "a": {"z": 2.0, "y": [1, {"d": b"\x00", "c": None}]}}
    b = {"a": {"y": [1, {"c": None, "d": b"\x00"}], "z": 2.0}, "b": 1, "kind": "x"}
    assert canonical(a) == canonical(b)
    # and they are plain msgpack: keys sorted, floats 64-bit
    assert msgpack.unpackb(canonical(a)) == a
    assert b"\xcb" in canonical({"t": 2.0})  # float 64 marker, even for an integral value


def test_a_sealed_message_verifies_and_any_change_breaks_it(tmp_path: Path) -> None:
    topic = topics.status("sat-a")
    v = Verifier({"sat-a": KEY})
    v.check("sat-a", topic, sealed(sealer(tmp_path), topic))
    msg = sealed(sealer(tmp_path / "2"), topic)
    for change in ({"state": "offline"}, {"t": 1.25}, {"extra": 1}):
        with pytest.raises(AuthError, match=r"auth\.mac: does not verify"):
            v.check("sat-a", topic, {**msg, **change})
    with pytest.raises(AuthError, match="does not verify"):  # replayed on another topic
        v.check("sat-a", topics.state("sat-a"), msg)
    with pytest.raises(AuthError, match="does not verify"):  # the seq is covered too
        v.check("sat-a", topic, {**msg, "auth": {**msg["auth"], "seq": msg["auth"]["seq"] + 1}})


def test_unsealed_unknown_and_wrong_key_are_refused(tmp_path: Path) -> None:
    topic = topics.status("sat-a")
    v = Verifier({"sat-a": KEY})
    plain = Status(node="sat-a", state="online", t=0.0).model_dump(mode="python")
    with pytest.raises(AuthError, match="auth: missing"):
        v.check("sat-a", topic, plain)
    with pytest.raises(AuthError, match="no key for node 'ghost'"):
        v.check("ghost", topics.status("ghost"), sealed(sealer(tmp_path), topics.status("ghost")))
    with pytest.raises(AuthError, match="does not verify"):
        v.check("sat-a", topic, sealed(sealer(tmp_path / "o", OTHER), topic))
    with pytest.raises(AuthError, match=r"auth\.seq"):
        v.check("sat-a", topic, {**plain, "auth": {"seq": -1, "mac": "0" * 64}})


def test_replays_are_refused_and_reordering_within_the_window_is_not(tmp_path: Path) -> None:
    s = sealer(tmp_path)
    topic = topics.result("sat-a")
    msgs = []
    for i in range(5):
        body = JobResult(job_id=f"j{i}", epoch=0, node="sat-a", status="done").model_dump()
        msgs.append(decode(encode(s.seal(topic, body))))
    v = Verifier({"sat-a": KEY})
    for i in (0, 3, 1, 4, 2):  # overtaking each other: all pass
        v.check("sat-a", topic, msgs[i])
    for m in msgs:
        with pytest.raises(AuthError, match="replayed"):
            v.check("sat-a", topic, m)
    assert v.high("sat-a") == msgs[4]["auth"]["seq"]


def test_the_window_forgets_what_is_far_below_the_highest() -> None:
    w = ReplayWindow(size=8)
    assert w.accept(100)
    assert not w.fresh(92) and w.fresh(93)
    assert w.accept(95) and not w.accept(95)


def test_a_restarted_ground_refuses_what_it_accepted_before(tmp_path: Path) -> None:
    topic = topics.status("sat-a")
    s = sealer(tmp_path)
    old = sealed(s, topic)
    v = Verifier({"sat-a": KEY})
    v.check("sat-a", topic, old)
    restarted = Verifier({"sat-a": KEY}, marks={"sat-a": Marks(v.high("sat-a"))})
    with pytest.raises(AuthError, match="replayed"):
        restarted.check("sat-a", topic, old)
    restarted.check("sat-a", topic, sealed(s, topic))


def test_sequence_numbers_keep_growing_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "auth.seq"
    first = SequenceFile(path, block=4)
    taken = [first.take() for _ in range(6)]
    assert taken == list(range(6))
    second = SequenceFile(path, block=4)  # a restart: numbers continue above every used one
    assert second.take() > taken[-1]
    (tmp_path / "bad.seq").write_text("not a number")
    with pytest.raises(AuthError, match="unreadable"):
        SequenceFile(tmp_path / "bad.seq")


def test_the_last_will_is_taken_once_although_its_number_is_old(tmp_path: Path) -> None:
    topic = topics.status("sat-a")
    s = sealer(tmp_path)
    will = sealed(s, topic, state="offline")  # sealed at connect
    v = Verifier({"sat-a": KEY})
    for _ in range(3):
        v.check("sat-a", topic, sealed(s, topic))
    with pytest.raises(AuthError, match="replayed"):
        Verifier({"sat-a": KEY}, marks={"sat-a": Marks(v.high("sat-a"))}).check(
            "sat-a", topic, will)
    v.check("sat-a", topic, will)  # first sight of this number: fine anyway
    v2 = Verifier({"sat-a": KEY}, marks={"sat-a": Marks(v.high("sat-a"))})
    v2.expect_will("sat-a", will["auth"]["seq"])
    v2.check("sat-a", topic, will)
    v2.check("sat-a", topic, will)  # now the status in force: the broker's retained copy
    v2.check("sat-a", topic, sealed(s, topic))  # the node is back
    with pytest.raises(AuthError, match="replayed"):
        v2.check("sat-a", topic, will)  # an old will replayed


def test_key_files(tmp_path: Path) -> None:
    (tmp_path / "sat-a.key").write_text(KEY.hex() + "\n")
    (tmp_path / "sat-b.key").write_text("abcd\n")
    assert load_key(tmp_path / "sat-a.key") == KEY
    with pytest.raises(AuthError, match=r"sat-b\.key: expected 64 hex"):
        load_keys(tmp_path)
    with pytest.raises(AuthError, match=r"missing\.key"):
        load_key(tmp_path / "missing.key")
    with pytest.raises(AuthError, match="not a directory"):
        load_keys(tmp_path / "nope")


def test_mac_is_the_documented_construction() -> None:
    import hashlib
    import hmac

    body = {"node": "n", "kind": "status"}
    want = hmac.new(
        KEY,
        b"odc-auth-v1\x00" + b"odc/sat/n/status" + b"\x00" + (7).to_bytes(8, "big")
        + msgpack.packb({"kind": "status", "node": "n"}, use_bin_type=True),
        hashlib.sha256,
    ).hexdigest()
    assert mac(KEY, "odc/sat/n/status", 7, body) == want


def test_a_restarted_ground_takes_the_retained_status_and_the_will_it_knew(
    tmp_path: Path,
) -> None:
    topic = topics.status("sat-a")
    s = sealer(tmp_path)
    will = sealed(s, topic, state="offline")
    online = sealed(s, topic)
    v = Verifier({"sat-a": KEY})
    v.check("sat-a", topic, online)
    v.expect_will("sat-a", will["auth"]["seq"])
    v.check("sat-a", topics.state("sat-a"), sealed(s, topics.state("sat-a")))
    restarted = Verifier({"sat-a": KEY}, marks=v.marks_of({"sat-a"}))
    restarted.check("sat-a", topic, online)  # the broker's retained copy, on subscribe
    restarted.check("sat-a", topic, online)  # and again after a reconnect
    restarted.check("sat-a", topic, will)  # the node died: its will
    with pytest.raises(AuthError, match="replayed"):
        restarted.check("sat-a", topic, online)  # no longer the status in force
    restarted.check("sat-a", topic, sealed(s, topic))  # back online
    with pytest.raises(AuthError, match="replayed"):
        restarted.check("sat-a", topic, will)
