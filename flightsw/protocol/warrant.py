"""Job warrants: the ground station's Ed25519 signature on what a job is.

Nodes hold one another's keys no more than an outsider does, so a node receiving a
handover cannot tell from the sender whether the job is real. The ground signs each job it
accepts with its private warrant key; a node configured with the ground's public key runs
only jobs whose warrant verifies, whether they come from the ground or from another node.
The warrant covers what a job *is* and never changes on its way (not the epoch or the
migration count, which do)::

    signed = canonical({"job_id", "model", "inputs_sha256", "priority", "deadline",
                        "value", "submitted_at", "origin"})

with ``inputs_sha256`` the hex SHA-256 of the canonical encoding of ``inputs`` (see
:func:`flightsw.protocol.sign.canonical` and docs/protocol.md). A signature, unlike the
node seals' HMAC, can be checked by anyone holding the public key and made by no one else,
so one public key serves every node.

A pipeline job (``JobSubmit.pipeline``) changes its ``model`` and ``inputs`` from stage to
stage, so its warrant signs what stays: ``model`` is the first stage's model,
``inputs_sha256`` the pipeline's digest of the original inputs, and the map gains
``"stages"``, the list of stage models. The members (the nodes the ground chose) and the
stage index are not covered, nor the activations a stage after the first runs on: a node
checks those against the plan and the handover's sender (``flightsw.node.pipeline``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from flightsw.exceptions import AuthError
from flightsw.protocol.messages import JobSubmit, Tensor
from flightsw.protocol.sign import canonical

__all__ = [
    "WarrantSigner",
    "WarrantVerifier",
    "inputs_sha256",
    "new_warrant_key",
    "warrant_body",
]


def inputs_sha256(inputs: dict[str, Tensor]) -> str:
    """The hex SHA-256 of the canonical encoding of a job's inputs."""
    plain = {k: t.model_dump(mode="python") for k, t in inputs.items()}
    return hashlib.sha256(canonical(plain)).hexdigest()


def warrant_body(job: JobSubmit) -> bytes:
    """The bytes a warrant signs (see the module doc)."""
    body = {
        "job_id": job.job_id,
        "model": job.model,
        "inputs_sha256": inputs_sha256(job.inputs),
        "priority": job.priority,
        "deadline": job.deadline,
        "value": job.value,
        "submitted_at": job.submitted_at,
        "origin": job.origin,
    }
    p = job.pipeline
    if p is not None:
        body.update(model=p.stages[0], inputs_sha256=p.inputs_sha256, stages=list(p.stages))
    return canonical(body)


def new_warrant_key() -> tuple[str, str]:
    """A fresh key pair as stored: (private, public), 64 hex characters each."""
    private = Ed25519PrivateKey.generate()
    return private.private_bytes_raw().hex(), private.public_key().public_bytes_raw().hex()


def _read_hex32(path: Path, what: str) -> bytes:
    try:
        raw = bytes.fromhex(path.read_text().strip())
    except OSError as exc:
        raise AuthError(f"{what} {path}: {exc.strerror or exc}") from exc
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise AuthError(f"{what} {path}: expected 64 hex characters")
    return raw


class WarrantSigner:
    """The ground's side: signs jobs with its private warrant key."""

    def __init__(self, private: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(private)

    @classmethod
    def from_file(cls, path: Path) -> WarrantSigner:
        return cls(_read_hex32(path, "warrant key"))

    def sign(self, job: JobSubmit) -> JobSubmit:
        return job.model_copy(update={"warrant": self._key.sign(warrant_body(job)).hex()})


class WarrantVerifier:
    """A node's side: checks jobs against the ground's public warrant key."""

    def __init__(self, public: bytes) -> None:
        self._key = Ed25519PublicKey.from_public_bytes(public)

    @classmethod
    def from_file(cls, path: Path) -> WarrantVerifier:
        return cls(_read_hex32(path, "ground public key"))

    def check(self, job: JobSubmit) -> None:
        """Return if the job's warrant verifies, else :class:`AuthError` (field
        ``warrant``) saying why."""
        if job.warrant is None:
            raise _bad("warrant: missing (this node runs only jobs the ground signed)")
        try:
            sig = bytes.fromhex(job.warrant)
            self._key.verify(sig, warrant_body(job))
        except (ValueError, InvalidSignature) as exc:
            raise _bad("warrant: does not verify (a job the ground did not sign, or "
                       "altered since)") from exc


def _bad(message: str) -> AuthError:
    err = AuthError(message)
    err.field = "warrant"
    return err
