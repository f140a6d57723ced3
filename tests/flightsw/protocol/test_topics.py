"""Topic names and node ids."""

from __future__ import annotations

import re

import pytest

from flightsw.bus.base import check_topic, check_topic_filter, topic_matches
from flightsw.exceptions import ConfigError
from flightsw.protocol import topics


def test_node_topics() -> None:
    assert topics.telemetry("sat-1") == "odc/sat/sat-1/telemetry"
    assert topics.status("sat-1") == "odc/sat/sat-1/status"
    assert topics.job("sat-1") == "odc/sat/sat-1/job"
    assert topics.result("sat-1") == "odc/sat/sat-1/result"
    assert topics.event("sat-1") == "odc/sat/sat-1/event"
    assert topics.command("sat-1") == "odc/sat/sat-1/cmd"
    assert topics.ack("sat-1") == "odc/sat/sat-1/ack"
    assert topics.model("sat-1") == "odc/sat/sat-1/model"
    assert topics.state("sat-1") == "odc/sat/sat-1/state"
    for make in (topics.telemetry, topics.status, topics.job, topics.result, topics.event,
                 topics.command, topics.ack, topics.model, topics.state):
        topic = make("n.2_x")
        check_topic(topic)
        assert topics.node_from_topic(topic) == "n.2_x"


def test_handover_topics_match_the_inbox_filter() -> None:
    out = topics.handover("a", "b")
    assert out == "odc/sat/a/handover/b"
    check_topic(out)
    check_topic_filter(topics.handover_inbox("b"))
    assert topic_matches(topics.handover_inbox("b"), out)
    assert not topic_matches(topics.handover_inbox("c"), out)
    assert topics.node_from_topic(out) == "a"  # published under the sender's own tree


@pytest.mark.parametrize(
    ("topic", "node"),
    [
        ("odc/sat/x", "x"),
        ("odc/sat/x/telemetry/extra", "x"),
        ("odc/sat", None),
        ("odc/ground/stations", None),
        ("other/sat/x/status", None),
        ("", None),
    ],
)
def test_node_from_topic(topic: str, node: str | None) -> None:
    assert topics.node_from_topic(topic) == node


def test_fixed_names() -> None:
    assert topics.PREFIX == "odc/sat"
    assert topics.GROUND_STATIONS == "odc/ground/stations"


@pytest.mark.parametrize("node", ["a", "sat-00001", "Node_1.b", "x" * 64])
def test_valid_node_ids(node: str) -> None:
    assert topics.validate_node_id(node) == node


@pytest.mark.parametrize("node", ["", "x" * 65, "a/b", "a+", "a#", "two words", "sat\n", "é"])
def test_invalid_node_ids_are_named(node: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"node id {node!r}: use 1-64")):
        topics.validate_node_id(node)
