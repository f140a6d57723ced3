"""Write a Docker Swarm stack file: the compose deployment over one or several hosts.

The services are those of ``docker/gen_compose.py`` (same broker roles, TLS, node keys,
console), on every host's own network stack (the ``host`` network), with what compose
bind-mounts from the repository turned into what a swarm ships to any host itself:

* the broker's entrypoint, health check and role ACLs (``docker/mosquitto``) become swarm
  **configs**; TLS material and node keys (``docker/make_secrets.py``) become swarm
  **secrets**, each service given only the files compose would have mounted for it;
* ``restart`` becomes ``deploy.restart_policy``; the broker and the ground station (its
  archive and job table are a local volume) are placed on a manager, nodes anywhere;
* the shared clock: ``ODC_EPOCH`` and ``ODC_CLOCK_ANCHOR`` are required at deploy time
  (``docker stack deploy`` substitutes them), so every host runs the same mission time.

On one host the broker listens on 127.0.0.1 (the default). Over several hosts give
``--broker-host ADDRESS``, an address every host reaches the manager at; the broker binds to
it and its certificate must name it (``make_secrets.py --host ADDRESS``)::

    python3 docker/make_secrets.py docker/.generated/secrets --host 10.0.0.5 --nodes 12
    python3 docker/gen_stack.py --nodes 12 --broker-host 10.0.0.5 -o stack.yaml
    export ODC_EPOCH=2026-03-20T00:00:00Z ODC_CLOCK_ANCHOR=$(date +%s)
    docker stack deploy -c stack.yaml odc

The file is written as JSON (valid YAML, which the stack loader reads) after a comment
header. Standard library only, as the compose generator. Step by step: docs/docker.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_compose  # a sibling script, not a package
import make_secrets

__all__ = ["main", "stack"]

Yaml = gen_compose.Yaml
HOSTNET = "hostnet"  # the stack's name for the engine's built-in host network
_DROPPED = ("network_mode", "init", "restart", "depends_on")  # compose-only keys
_ON_MANAGER = ("broker", "ground")
_CLOCK = {
    "ODC_TIME_SCALE": "${ODC_TIME_SCALE:-1}",
    "ODC_EPOCH": "${ODC_EPOCH:?export ODC_EPOCH (ISO 8601 UTC) before deploying}",
    "ODC_CLOCK_ANCHOR": "${ODC_CLOCK_ANCHOR:?export ODC_CLOCK_ANCHOR (POSIX seconds)}",
}


def _object_name(kind: str, rel: Path) -> str:
    """A swarm object name for a file: ``tls-broker-ca.crt``, ``mosquitto-roles-node.acl``."""
    name = f"{kind}-" + "-".join(rel.parts)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    if len(name) > 56:  # swarm allows 64 with the stack's prefix counted in
        raise ValueError(f"{rel}: path too long for a swarm object name ({name})")
    return name


def _files(src: Path, kind: str) -> list[Path]:
    """The files of a bind mount; of ``docker/mosquitto`` only what the broker reads (its
    scripts and role ACLs, not the image's Dockerfile or examples)."""
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise ValueError(f"{src}: missing (make it first: docker/make_secrets.py)")
    files = sorted(f for f in src.rglob("*") if f.is_file())
    if kind == "mosquitto":
        files = [f for f in files if f.suffix in (".sh", ".acl")]
    return files


def stack(settings: gen_compose.Settings, secrets_dir: Path, mosquitto_dir: Path
          ) -> dict[str, Yaml]:
    """The stack file as a mapping, from the compose deployment of ``settings`` whose bind
    mounts come from ``secrets_dir`` (made by make_secrets) and ``mosquitto_dir``."""
    secrets_dir, mosquitto_dir = secrets_dir.resolve(), mosquitto_dir.resolve()
    base = gen_compose.compose(dataclasses.replace(
        settings, network="host", secrets_dir=str(secrets_dir),
        mosquitto_dir=str(mosquitto_dir)))
    base_services = base["services"]
    assert isinstance(base_services, dict)
    roots = {"mosquitto": mosquitto_dir, "tls": secrets_dir}
    objects: dict[str, dict[str, Yaml]] = {"configs": {}, "secrets": {}}
    services: dict[str, Yaml] = {}
    for name, svc in base_services.items():
        assert isinstance(svc, dict)
        out: dict[str, Yaml] = {k: v for k, v in svc.items() if k not in _DROPPED}
        out["networks"] = [HOSTNET]
        deploy: dict[str, Yaml] = {"restart_policy": {"condition": "on-failure"}}
        if name in _ON_MANAGER:
            deploy["placement"] = {"constraints": ["node.role == manager"]}
        out["deploy"] = deploy
        volumes: list[Yaml] = []
        mounts: dict[str, list[Yaml]] = {"configs": [], "secrets": []}
        raw = svc.get("volumes", [])
        assert isinstance(raw, list)
        for entry in raw:
            assert isinstance(entry, str)
            src_text, target = entry.split(":")[:2]
            src = Path(src_text)
            if not src.is_absolute():
                volumes.append(entry)  # a named volume: local to the host it runs on
                continue
            kind = "mosquitto" if src.is_relative_to(mosquitto_dir) else "tls"
            section = "configs" if kind == "mosquitto" else "secrets"
            for f in _files(src, kind):
                obj = _object_name(kind, f.relative_to(roots[kind]))
                objects[section][obj] = {"file": str(f)}
                where = target if src.is_file() else f"{target}/{f.relative_to(src).as_posix()}"
                mounts[section].append({"source": obj, "target": where})
        if volumes:
            out["volumes"] = volumes
        else:
            out.pop("volumes", None)
        for section, items in mounts.items():
            if items:
                out[section] = items
        env = out.get("environment")
        if isinstance(env, list):  # bare clock names: compose passes them on, a stack not
            out["environment"] = [f"{e}={_CLOCK[e]}" if isinstance(e, str) and e in _CLOCK
                                  else e for e in env]
        services[name] = out
    doc: dict[str, Yaml] = {
        "version": "3.8",
        "services": services,
        "networks": {HOSTNET: {"external": True, "name": "host"}},
        "volumes": base["volumes"],
    }
    for section, objs in objects.items():
        if objs:
            doc[section] = dict(sorted(objs.items()))
    return doc


HEADER = """\
# Generated by docker/gen_stack.py ({args}); edit the generator, not this file.
# Deploy: export ODC_EPOCH and ODC_CLOCK_ANCHOR, then docker stack deploy -c FILE NAME
# Credentials: {creds}
"""


def build_parser() -> argparse.ArgumentParser:
    p = gen_compose.build_parser()
    p.prog = "gen_stack.py"
    p.description = __doc__.split("\n")[0]
    p.add_argument("--broker-host", default="127.0.0.1", metavar="ADDRESS",
                   help="address every host reaches the broker at, and it binds to "
                        "(default 127.0.0.1: one host)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.network != "bridge":
        print("gen_stack.py: error: --network: a stack always uses each host's network",
              file=sys.stderr)
        return 2
    settings = dataclasses.replace(
        gen_compose.settings_from_args(args, Path.cwd()), broker_host=args.broker_host)
    try:
        if not args.no_secrets:
            made = make_secrets.ensure(args.secrets, [args.broker_host])
            if settings.node_keys:
                ids = [make_secrets.node_id(i) for i in range(settings.nodes)]
                made += make_secrets.ensure_node_keys(args.secrets, ids)
            if made:
                print(f"gen_stack.py: made {', '.join(made)} in {args.secrets}",
                      file=sys.stderr)
        doc = stack(settings, args.secrets, gen_compose.MOSQUITTO_DIR)
    except (ValueError, make_secrets.SecretsError) as exc:
        print(f"gen_stack.py: error: {exc}", file=sys.stderr)
        return 2
    describe = f"--nodes {settings.nodes} --passwords {settings.passwords}"
    if args.broker_host != "127.0.0.1":
        describe += f" --broker-host {args.broker_host}"
    creds = ("development defaults <user>-dev (docs/docker.md); not for a shared network."
             if settings.passwords == "dev"
             else "random passwords generated for this file: keep it private.")
    text = HEADER.format(args=describe, creds=creds) + json.dumps(doc, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        if settings.passwords == "random":
            args.out.chmod(0o600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
