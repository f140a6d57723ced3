"""``ODC_CA_FILE``: ``mqtts://`` connections trust a private CA given in the environment
(the Docker deployment's CA, docs/docker.md) instead of the system store."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from mosquitto import MosquittoProcess

from flightsw.broker import free_port
from flightsw.bus import MqttBus
from flightsw.bus.url import CA_FILE_ENV_VAR, default_ca_file
from flightsw.exceptions import BusError, ConfigError


def test_default_ca_file_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CA_FILE_ENV_VAR, raising=False)
    assert default_ca_file() is None
    monkeypatch.setenv(CA_FILE_ENV_VAR, "")
    assert default_ca_file() is None
    monkeypatch.setenv(CA_FILE_ENV_VAR, "/etc/odc-tls/ca.crt")
    assert default_ca_file() == "/etc/odc-tls/ca.crt"


def test_an_unusable_ca_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CA_FILE_ENV_VAR, str(tmp_path / "missing.crt"))
    with pytest.raises(ConfigError, match=r"ODC_CA_FILE='.*missing\.crt': cannot load"):
        MqttBus("mqtts://127.0.0.1:8883", "x")
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    monkeypatch.setenv(CA_FILE_ENV_VAR, str(tmp_path / "junk.crt"))
    with pytest.raises(ConfigError, match=r"junk\.crt"):
        MqttBus("mqtts://127.0.0.1:8883", "x")
    MqttBus("mqtt://127.0.0.1:1883", "x")  # plain TCP never reads it


@pytest.mark.mqtt
async def test_mqtts_trusts_the_ca_in_the_environment(
    mosquitto_factory: Callable[..., Awaitable[MosquittoProcess]],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    tls_port = free_port()
    await mosquitto_factory(
        config_extra=f"listener {tls_port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n")
    url = f"mqtts://127.0.0.1:{tls_port}"
    monkeypatch.delenv(CA_FILE_ENV_VAR, raising=False)
    with pytest.raises(BusError):  # the system store does not know the private CA
        async with MqttBus(url, "no-ca", connect_timeout_s=1.0):
            pass
    monkeypatch.setenv(CA_FILE_ENV_VAR, str(cert))
    async with MqttBus(url, "with-ca", clean_start=True, persistent_session=False) as bus, \
            bus.subscribe("t/#") as sub:
        await bus.publish("t/1", b"over tls")
        async with asyncio.timeout(5):
            assert (await sub.get()).payload == b"over tls"
