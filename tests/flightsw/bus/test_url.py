"""Broker URL parsing."""

from __future__ import annotations

import pytest

from flightsw.bus.url import BrokerUrl, default_broker_url, parse_broker_url
from flightsw.exceptions import ConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1", BrokerUrl("127.0.0.1", 1883)),
        ("mqtt://broker:1884", BrokerUrl("broker", 1884)),
        ("mqtts://broker.example.org", BrokerUrl("broker.example.org", 8883, tls=True)),
        ("MQTT://Broker/", BrokerUrl("broker", 1883)),
        ("mqtt://node-3:s3cr%40t@10.0.0.2:1999", BrokerUrl("10.0.0.2", 1999, "node-3", "s3cr@t")),
        ("mqtt://ground@localhost", BrokerUrl("localhost", 1883, "ground", None)),
        ("mqtt://[::1]:1885", BrokerUrl("::1", 1885)),
    ],
)
def test_parse_valid_urls(url: str, expected: BrokerUrl) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "non-empty"),
        ("tcp://host:1883", "scheme must be 'mqtt' or 'mqtts'"),
        ("127.0.0.1:1883", "scheme"),
        ("mqtt://", "missing host"),
        ("mqtt://host:99999", "port"),
        ("mqtt://host:0", "port"),
        ("mqtt://host:abc", "port"),
        ("mqtt://host/topic", "unexpected path"),
        ("mqtt://host?x=1", "query"),
        ("mqtt://:pw@host", "password given without a user name"),
    ],
)
def test_bad_urls_raise_config_error_naming_the_url(url: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_broker_url(url)
    message = str(info.value)
    assert why in message
    assert repr(url.replace(":pw@", ":***@")) in message


def test_error_and_str_never_show_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        parse_broker_url("mqtt://user:hunter2@host:notaport")
    assert "hunter2" not in str(info.value)
    assert "user:***@host" in str(info.value)
    url = parse_broker_url("mqtts://user:hunter2@host")
    assert str(url) == "mqtts://user:***@host:8883"
    assert "hunter2" not in repr(url.redacted())
    assert parse_broker_url(url.unredacted()) == url


def test_default_broker_url_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ODC_BROKER", raising=False)
    assert default_broker_url() == "mqtt://127.0.0.1:1883"
    monkeypatch.setenv("ODC_BROKER", "mqtts://gs:pw@broker:8884")
    assert default_broker_url() == "mqtts://gs:pw@broker:8884"
    assert parse_broker_url(default_broker_url()).port == 8884
