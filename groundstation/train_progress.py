"""What the ground knows of a training run while it goes (``groundstation.training``).

:class:`TrainProgress` keeps the run's state (epoch, members, step reached, last loss,
checkpoints taken, re-plans) and, on every change, tells a callback one line for the user
and rewrites a JSON summary file (atomically: temporary file and rename) if given one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flightsw.atomicfile import write_atomic

__all__ = ["Replan", "TrainProgress"]


@dataclass
class Replan:
    """One re-plan: the epoch it started, from which step, on which members, and why."""

    epoch: int
    from_step: int
    reached_step: int  # the furthest step the previous epoch was known to reach
    lost: list[str]
    added: list[str]
    members: list[str]
    reason: str


@dataclass
class TrainProgress:
    """A training run's progress (see the module doc)."""

    job_id: str
    steps: int
    summary_path: Path | None = None
    say: Callable[[str], None] | None = None
    status: str = "starting"  # starting, running, done, failed
    epoch: int = 0
    members: list[str] = field(default_factory=list)
    resumed_from: int | None = None  # the checkpoint step this invocation began at
    step: int = 0  # steps done, as last reported (a checkpoint or a member's end)
    loss: float | None = None
    checkpoints: int = 0  # checkpoints written by this invocation
    last_checkpoint: dict[str, Any] | None = None
    replans: list[Replan] = field(default_factory=list)
    stale_refused: int = 0  # gradients the members refused as of an older epoch
    reason: str | None = None

    def start(self, epoch: int, members: list[str], from_step: int) -> None:
        self.status, self.epoch, self.members, self.step = "running", epoch, members, from_step
        self._emit(f"{self.job_id}: epoch {epoch} on {', '.join(members)} from step "
                   f"{from_step}/{self.steps}")

    def checkpoint(self, step: int, loss: float | None, path: Path) -> None:
        self.step, self.checkpoints = step, self.checkpoints + 1
        if loss is not None:
            self.loss = loss
        self.last_checkpoint = {"step": step, "epoch": self.epoch, "path": str(path)}
        loss_text = "" if loss is None else f", loss {loss:.4f}"
        self._emit(f"{self.job_id}: step {step}/{self.steps}{loss_text}, checkpoint "
                   f"{self.checkpoints} written ({path.name})")

    def replan(self, plan: Replan) -> None:
        self.replans.append(plan)
        self._emit(f"{self.job_id}: re-plan to epoch {plan.epoch}: {plan.reason}; "
                   f"lost {', '.join(plan.lost) or 'none'}, added "
                   f"{', '.join(plan.added) or 'none'}; step {plan.reached_step} reached, "
                   f"going on from step {plan.from_step}")

    def end(self, status: str, step: int, loss: float | None, reason: str | None = None
            ) -> None:
        self.status, self.step, self.reason = status, step, reason
        if loss is not None:
            self.loss = loss
        self._write()

    def summary(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "status": self.status, "reason": self.reason,
            "epoch": self.epoch, "members": self.members, "steps": self.steps,
            "step": self.step, "loss": self.loss, "resumed_from": self.resumed_from,
            "checkpoints": self.checkpoints, "last_checkpoint": self.last_checkpoint,
            "replans": [asdict(r) for r in self.replans],
            "stale_gradients_refused": self.stale_refused,
        }

    def _emit(self, line: str) -> None:
        if self.say is not None:
            self.say(line)
        self._write()

    def _write(self) -> None:
        if self.summary_path is None:
            return
        write_atomic(self.summary_path, (json.dumps(self.summary(), indent=2) + "\n").encode())
