"""The ground's rulebook for a job: which result counts, when a lease lapses, where to uplink.

One set of rules for the real ground station (``groundstation/service.py``) and the
simulator's ledger and uplink (``flightsw/sim/``), so the two cannot drift. It lives here,
below both, because ``flightsw`` never imports ``groundstation``. Pure functions and value
objects: no I/O, no clock (``now`` is passed in).

* **Epochs** (fencing tokens): a job starts at epoch 0; a handover and a re-run after a
  lapsed lease each give it :func:`next_epoch`.
* **Results**: :func:`judge_result`. A result (done or failed) is recorded iff the job has no
  outcome yet and its epoch is at least the job's current epoch (a higher epoch can arrive
  before the ground has seen the handover that raised it); otherwise it is a duplicate (the
  job already ended) or stale (a lower epoch). Job events and lease claims follow the same
  rule: they count iff :func:`judge_result` says ``"record"``.
* **Leases**: :func:`lease_lapsed`; a lapsed job is queued again with :func:`next_epoch`, and
  an owner going offline lapses every job of its that is past the ground's queue
  (:func:`lapses_when_offline`).
* **Uplink target**: :func:`choose_uplink`, the node in contact that could start the job
  soonest (:func:`uplink_ready_s`). A job still at the ground when its deadline has passed
  is not uplinked: it fails at the ground (:func:`expired_at_ground`, reason
  :data:`EXPIRED_AT_GROUND`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, NamedTuple

__all__ = [
    "EXPIRED_AT_GROUND",
    "ResultVerdict",
    "UplinkOption",
    "choose_uplink",
    "expired_at_ground",
    "judge_result",
    "lapses_when_offline",
    "lease_lapsed",
    "next_epoch",
    "uplink_ready_s",
]

ResultVerdict = Literal["record", "duplicate", "stale"]


def judge_result(terminal: bool, current_epoch: int, result_epoch: int) -> ResultVerdict:
    """What to do with a result of ``result_epoch`` for a job at ``current_epoch``.

    ``terminal``: the job already has an outcome (done or failed). A done and a failed
    result are judged alike.
    """
    if terminal:
        return "duplicate"
    if result_epoch < current_epoch:
        return "stale"
    return "record"


def next_epoch(epoch: int) -> int:
    """The epoch a job gets when it is handed over or re-run after its lease lapsed."""
    return epoch + 1


def lease_lapsed(now: float, last_seen: float, lease_s: float) -> bool:
    """The owner has not renewed the lease (listed the job) for more than ``lease_s``."""
    return now - last_seen > lease_s


def lapses_when_offline(job_state: str) -> bool:
    """A job of a node whose status turns offline lapses unless the ground still holds it.

    ``job_state`` is the ground's state of an unfinished job (``queued``, ``uplinked``,
    ``accepted``, ``deferred``, ``running``, ``migrating``): only a job still ``queued`` at
    the ground was never handed to the node.
    """
    return job_state != "queued"


EXPIRED_AT_GROUND = "deadline expired at the ground (no uplink in time)"


def expired_at_ground(deadline: float | None, now: float) -> bool:
    """A job waiting at the ground whose deadline has passed: it fails there, with
    :data:`EXPIRED_AT_GROUND`, instead of taking uplink time to fail on board."""
    return deadline is not None and deadline < now


class UplinkOption(NamedTuple):
    """One node in contact that could take a job, as the ground sees it.

    How a driver builds one per node in contact, for each job in turn:

    * ``node``: the node's name (ties between equally good nodes go to the lower name);
    * ``uplink_rate_bps``: the node's uplink rate; ``math.inf`` (or a value <= 0) when the
      driver does not model the link's transfer time (it then counts 0 s);
    * ``backlog_s``: seconds of work ahead of a new job on that node at its fastest mode:
      the running job's remaining time, its queue, work on its way to it (handovers,
      uplinks still in flight) and the work of every job already sent to it that its
      last heartbeat did not yet list (the rest of this pass included);
    * ``has_model``: the node holds the job's model (or it is already on its way there),
      so only the inputs travel.
    """

    node: str
    uplink_rate_bps: float
    backlog_s: float
    has_model: bool


def uplink_ready_s(option: UplinkOption, input_bytes: float, model_bytes: float) -> float:
    """Seconds until ``option``'s node could start the job: send the inputs (and the model
    if it lacks it) at its uplink rate, then wait out its backlog."""
    size = input_bytes + (0.0 if option.has_model else model_bytes)
    rate = option.uplink_rate_bps
    send_s = 8.0 * size / rate if 0.0 < rate < math.inf else 0.0
    return send_s + option.backlog_s


def choose_uplink(
    options: Sequence[UplinkOption], input_bytes: float, model_bytes: float
) -> int | None:
    """Index in ``options`` of the node that could start the job soonest (least
    :func:`uplink_ready_s`; ties go to the lower node name, then the earlier option);
    ``None`` if there is no option.

    ``input_bytes``: what the job's uplink carries (its encoded inputs); ``model_bytes``: the
    size of the model file, sent too to a node that lacks it.
    """
    best: int | None = None
    best_key: tuple[float, str] | None = None
    for k, option in enumerate(options):
        key = (uplink_ready_s(option, input_bytes, model_bytes), option.node)
        if best_key is None or key < best_key:
            best, best_key = k, key
    return best
