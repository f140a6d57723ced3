"""Make the Docker deployment's secrets: a local CA, the broker's certificate, node keys.

    python3 docker/make_secrets.py                      # docker/.generated/secrets, 6 node keys
    python3 docker/make_secrets.py DIR --host mqtt.example.net --nodes 24

Nothing here is ever committed: the files are made on the machine that runs the deployment
(``docker/gen_compose.py -o FILE`` calls this too). Layout, one directory per consumer so
each container mounts only what it needs::

    DIR/ca/ca.crt, ca.key           the CA; ca.key (0600) is never mounted anywhere
    DIR/broker/broker.crt, .key     the broker's certificate and key (0600), with ca.crt
    DIR/clients/ca.crt              what clients trust (ODC_CA_FILE): nodes, ground, CLIs
    DIR/node-keys/<node>.key        each node's message key (seals what it publishes)
    DIR/node-keys/ground.warrant    the ground's Ed25519 job-signing key, and .pub
                                    a node gets its own key and ground.warrant.pub, the
                                    ground station the directory

The broker certificate names ``localhost``, ``broker`` (the compose service name) and
``127.0.0.1`` plus every ``--host``. Existing files are kept (re-running is harmless); a
broker certificate that lacks a requested name, or expires within 30 days, is made again
under the same CA. ``--force`` makes everything afresh (clients must then get the new
``ca.crt``).

ECDSA P-256 keys; the CA is valid 10 years, the broker certificate 825 days. Needs the
``openssl`` command; standard library only otherwise (it runs before anything is installed).

Node keys (``--nodes N`` for ``sat-001`` ... ``sat-N``, default 6, or ``--nodes a,b``) are
made by the project's own ``groundstation keys`` (docs/security.md): from ``$PATH`` or the
repository's ``.venv``, else run in the application image (``$ODC_IMAGE``, default
``odc:latest``) as the calling user. Existing keys are kept. The files are then made mode
0644 in a 0755 ``node-keys`` directory so the containers' unprivileged user (uid 10001) can
read what is mounted into them; on the host they stay private through ``DIR`` itself (0700).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "DEFAULT_DIR", "DEFAULT_HOSTS", "SecretsError", "ensure", "ensure_node_keys", "main",
    "node_id",
]

HERE = Path(__file__).resolve().parent
DEFAULT_DIR = HERE / ".generated" / "secrets"
DEFAULT_HOSTS = ("localhost", "broker", "127.0.0.1")
CA_DAYS = 3650
BROKER_DAYS = 825
RENEW_BEFORE_S = 30 * 86400
_NODE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def node_id(i: int) -> str:
    """The id of the deployment's node ``i`` (0-based): ``sat-001`` ..."""
    return f"sat-{i + 1:03d}"


class SecretsError(Exception):
    """The TLS material cannot be made (no openssl, a bad host name, openssl failed)."""


def _openssl(*args: str) -> str:
    exe = shutil.which("openssl")
    if exe is None:
        raise SecretsError("the openssl command is needed (apt-get install openssl)")
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SecretsError(f"openssl {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout


def _san(hosts: Sequence[str]) -> str:
    entries = []
    for host in hosts:
        try:
            entries.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            if not host or any(c in host for c in ", /:\n=") or len(host) > 253:
                raise SecretsError(f"--host {host!r}: not a host name or IP address") from None
            entries.append(f"DNS:{host}")
    return ",".join(entries)


def _private(path: Path) -> None:
    path.chmod(0o600)


def _make_ca(ca_dir: Path) -> None:
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_dir.chmod(0o700)
    key, crt = ca_dir / "ca.key", ca_dir / "ca.crt"
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", str(key))
    _private(key)
    _openssl("req", "-x509", "-new", "-key", str(key), "-sha256", "-days", str(CA_DAYS),
             "-subj", "/O=orbital-dc-emulator/CN=odc local CA", "-out", str(crt),
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")


def _make_broker(ca_dir: Path, broker_dir: Path, hosts: Sequence[str]) -> None:
    broker_dir.mkdir(parents=True, exist_ok=True)
    broker_dir.chmod(0o700)
    key, crt = broker_dir / "broker.key", broker_dir / "broker.crt"
    with tempfile.TemporaryDirectory() as tmp:
        csr, ext = Path(tmp) / "broker.csr", Path(tmp) / "ext.cnf"
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", str(key))
        _private(key)
        _openssl("req", "-new", "-key", str(key), "-subj",
                 f"/O=orbital-dc-emulator/CN={hosts[0]}", "-out", str(csr))
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            f"subjectAltName={_san(hosts)}\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid\n"
        )
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.crt"),
                 "-CAkey", str(ca_dir / "ca.key"), "-CAcreateserial", "-sha256",
                 "-days", str(BROKER_DAYS), "-extfile", str(ext), "-out", str(crt))
    (ca_dir / "ca.srl").unlink(missing_ok=True)
    crt.chmod(0o644)


def _broker_ok(crt: Path, hosts: Sequence[str]) -> bool:
    """The certificate exists, names every host and is valid for 30 more days."""
    if not crt.is_file():
        return False
    text = _openssl("x509", "-in", str(crt), "-noout", "-ext", "subjectAltName")
    names = {n.strip() for n in text.splitlines()[-1].split(",")} if "\n" in text else set()
    names = {n.replace("IP Address:", "IP:") for n in names}
    if not set(_san(hosts).split(",")) <= names:
        return False
    done = subprocess.run(["openssl", "x509", "-in", str(crt), "-noout", "-checkend",
                           str(RENEW_BEFORE_S)], capture_output=True, check=False)
    return done.returncode == 0


def ensure(directory: Path = DEFAULT_DIR, hosts: Sequence[str] = DEFAULT_HOSTS,
           *, force: bool = False) -> list[str]:
    """Make what is missing under ``directory``; returns what was made (for the log)."""
    hosts = list(dict.fromkeys([*DEFAULT_HOSTS, *hosts]))
    _san(hosts)  # a bad host name fails before anything is written
    made: list[str] = []
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    ca_dir, broker_dir, clients_dir = directory / "ca", directory / "broker", directory / "clients"
    if force or not (ca_dir / "ca.crt").is_file() or not (ca_dir / "ca.key").is_file():
        _make_ca(ca_dir)
        made.append("CA")
        force = True  # a new CA: the broker certificate must be signed again
    if force or not (broker_dir / "broker.key").is_file() \
            or not _broker_ok(broker_dir / "broker.crt", hosts):
        _make_broker(ca_dir, broker_dir, hosts)
        made.append(f"broker certificate for {', '.join(hosts)}")
    for target in (broker_dir, clients_dir):
        target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_dir / "ca.crt", target / "ca.crt")
        (target / "ca.crt").chmod(0o644)
    clients_dir.chmod(0o755)
    return made


def _keys_command(keys: Path) -> list[str]:
    """How to run ``groundstation keys`` writing into ``keys``."""
    for exe in (shutil.which("groundstation"), HERE.parent / ".venv" / "bin" / "groundstation"):
        if exe and os.access(exe, os.X_OK):
            return [str(exe), "keys", str(keys)]
    if shutil.which("docker") is None:
        raise SecretsError("node keys need `groundstation keys`: install the project "
                           "(pip install -e .) or build the images (docker/build-offline.sh)")
    image = os.environ.get("ODC_IMAGE") or "odc:latest"
    return ["docker", "run", "--rm", "--user", f"{os.getuid()}:{os.getgid()}",
            "-v", f"{keys.resolve()}:/keys", image, "groundstation", "keys", "/keys"]


def ensure_node_keys(directory: Path, nodes: Sequence[str]) -> list[str]:
    """Keys for every node of ``nodes`` (and the ground's warrant key pair) under
    ``directory/node-keys``, made by ``groundstation keys`` where missing; returns what was
    made, as it printed it."""
    for node in nodes:
        if not _NODE_ID.fullmatch(node):
            raise SecretsError(f"--nodes: {node!r} is not a node id (1-64 of A-Z a-z 0-9 _ . -)")
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    keys = directory / "node-keys"
    keys.mkdir(exist_ok=True)
    keys.chmod(0o755)
    if not nodes:
        return []
    for node in nodes:
        path = keys / f"{node}.key"
        if path.is_dir():
            # docker made it: compose was brought up before the key existed (it creates a
            # missing bind-mount source as a directory)
            try:
                path.rmdir()
            except OSError:
                raise SecretsError(f"{path} is a directory, not a key file") from None
    done = subprocess.run([*_keys_command(keys), "--nodes", ",".join(nodes)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SecretsError(f"groundstation keys failed: {done.stderr.strip()[-500:]}")
    for path in keys.iterdir():
        if path.is_file():
            path.chmod(0o644)
    return [Path(line).name for line in done.stdout.split()]


def _nodes(text: str) -> list[str]:
    if text.isdigit():
        return [node_id(i) for i in range(int(text))]
    return [n.strip() for n in text.split(",") if n.strip()]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_secrets.py", description=__doc__.split("\n")[0])
    p.add_argument("directory", nargs="?", type=Path, default=DEFAULT_DIR,
                   help=f"where the files go (default {os.path.relpath(DEFAULT_DIR)})")
    p.add_argument("--host", action="append", default=[], metavar="NAME_OR_IP",
                   help="another name the broker is reached by (repeat)")
    p.add_argument("--force", action="store_true", help="a new CA and broker certificate")
    p.add_argument("--nodes", default="6", metavar="N|A,B,...",
                   help="the nodes to make keys for: N for sat-001..sat-N, or node ids "
                        "(default 6: the committed compose files' nodes; 0 for none)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        made = ensure(args.directory, args.host, force=args.force)
        keyed = ensure_node_keys(args.directory, _nodes(args.nodes))
    except SecretsError as exc:
        print(f"make_secrets.py: error: {exc}", file=sys.stderr)
        return 2
    if keyed:
        made.append(f"keys {', '.join(keyed)}")
    what = ", ".join(made) if made else "nothing new (all present and valid)"
    print(f"make_secrets.py: {args.directory}: {what}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
