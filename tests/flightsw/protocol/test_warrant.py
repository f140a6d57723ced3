"""Job warrants: the ground's Ed25519 signature on what a job is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flightsw.exceptions import AuthError
from flightsw.protocol import JobSubmit, Tensor
from flightsw.protocol.warrant import WarrantSigner, WarrantVerifier, new_warrant_key

MODEL = "ab" * 32


def job(**kw: object) -> JobSubmit:
    x = Tensor.from_array(np.arange(8, dtype=np.float32).reshape(2, 4))
    return JobSubmit(job_id="j1", model=MODEL, inputs={"x": x}, **kw)  # type: ignore[arg-type]


def pair() -> tuple[WarrantSigner, WarrantVerifier]:
    priv, pub = new_warrant_key()
    return WarrantSigner(bytes.fromhex(priv)), WarrantVerifier(bytes.fromhex(pub))


def test_a_warrant_survives_epochs_and_migrations_but_not_changes() -> None:
    signer, verifier = pair()
    signed = signer.sign(job(priority=3, deadline=100.0))
    verifier.check(signed)
    verifier.check(signed.model_copy(update={"epoch": 4, "migrations": 2}))
    y = Tensor.from_array(np.ones((2, 4), np.float32))
    for change in ({"priority": 9}, {"deadline": None}, {"value": 5.0}, {"job_id": "j2"},
                   {"inputs": {"x": y}}, {"model": "cd" * 32}):
        with pytest.raises(AuthError, match="warrant: does not verify"):
            verifier.check(signed.model_copy(update=change))


def test_missing_forged_and_foreign_warrants_are_refused() -> None:
    signer, verifier = pair()
    other, _ = pair()
    with pytest.raises(AuthError, match="warrant: missing") as err:
        verifier.check(job())
    assert err.value.field == "warrant"
    with pytest.raises(AuthError, match="does not verify"):
        verifier.check(job(warrant="0" * 128))
    with pytest.raises(AuthError, match="does not verify"):
        verifier.check(other.sign(job()))
    verifier.check(signer.sign(job()))


def test_key_files(tmp_path: Path) -> None:
    priv, pub = new_warrant_key()
    (tmp_path / "g").write_text(priv + "\n")
    (tmp_path / "g.pub").write_text(pub + "\n")
    WarrantVerifier.from_file(tmp_path / "g.pub").check(WarrantSigner.from_file(tmp_path / "g")
                                                        .sign(job()))
    (tmp_path / "bad").write_text("zz")
    with pytest.raises(AuthError, match="expected 64 hex"):
        WarrantVerifier.from_file(tmp_path / "bad")
    with pytest.raises(AuthError, match="ground public key"):
        WarrantVerifier.from_file(tmp_path / "none")
