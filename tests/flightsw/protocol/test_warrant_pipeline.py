"""The warrant of a pipeline job: it covers the stage models and the original inputs, and
survives the changes every hop makes (model, inputs, stage, members, epoch)."""

from __future__ import annotations

import numpy as np
import pytest

from flightsw.exceptions import AuthError, ProtocolError
from flightsw.protocol import JobSubmit, Tensor, dump, parse
from flightsw.protocol.messages import Pipeline
from flightsw.protocol.warrant import (
    WarrantSigner,
    WarrantVerifier,
    inputs_sha256,
    new_warrant_key,
)

STAGES = ["a1" * 32, "b2" * 32, "c3" * 32]


def pipeline_job() -> JobSubmit:
    x = {"X": Tensor.from_array(np.arange(12, dtype=np.float32).reshape(3, 4))}
    plan = Pipeline(stages=STAGES, inputs_sha256=inputs_sha256(x))
    return JobSubmit(job_id="p1", model=STAGES[0], inputs=x, pipeline=plan)


def pair() -> tuple[WarrantSigner, WarrantVerifier]:
    priv, pub = new_warrant_key()
    return WarrantSigner(bytes.fromhex(priv)), WarrantVerifier(bytes.fromhex(pub))


def test_a_later_stage_keeps_the_warrant_of_the_first() -> None:
    signer, verifier = pair()
    signed = signer.sign(pipeline_job())
    assert signed.pipeline is not None
    verifier.check(signed)
    act = {"h": Tensor.from_array(np.ones((3, 8), np.float32))}
    plan = signed.pipeline.model_copy(update={"stage": 2, "members": ["n1", "n2", "n3"]})
    later = signed.model_copy(update={"model": STAGES[2], "inputs": act, "pipeline": plan,
                                      "epoch": 5})
    verifier.check(later)
    # through the wire as well
    verifier.check(parse(JobSubmit, dump(later)))


def test_the_warrant_covers_the_stage_models_and_the_original_inputs() -> None:
    signer, verifier = pair()
    signed = signer.sign(pipeline_job())
    assert signed.pipeline is not None
    swapped = signed.pipeline.model_copy(update={"stages": [STAGES[0], "dd" * 32, STAGES[2]]})
    other = signed.pipeline.model_copy(update={"inputs_sha256": "ee" * 32})
    for change in ({"pipeline": swapped}, {"pipeline": other}, {"pipeline": None}):
        with pytest.raises(AuthError, match="warrant: does not verify"):
            verifier.check(signed.model_copy(update=change))


def test_a_plain_job_signs_as_before() -> None:
    signer, verifier = pair()
    plain = pipeline_job().model_copy(update={"pipeline": None})
    signed = signer.sign(plain)
    verifier.check(signed)
    # a plain job's warrant does not make it a pipeline job
    with pytest.raises(AuthError):
        verifier.check(signed.model_copy(update={"pipeline": pipeline_job().pipeline}))


@pytest.mark.parametrize(("fields", "text"), [
    ({"stage": 3}, "stage 3 of a 3-stage pipeline"),
    ({"members": ["n1", "n2"]}, "2 members for 3 stages"),
    ({"members": ["n1", "n1", "n2"]}, "a node appears twice"),
    ({"stages": STAGES[:1]}, "stages"),
])
def test_an_inconsistent_plan_is_refused_naming_the_field(fields: dict[str, object],
                                                          text: str) -> None:
    obj = pipeline_job().model_dump(mode="python")
    obj["pipeline"].update(fields)
    with pytest.raises(ProtocolError, match=text) as err:
        parse(JobSubmit, obj)
    assert (err.value.field or "").startswith("pipeline")
