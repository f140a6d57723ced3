"""The demo's closing summary: figures from the console's tracking, checked on the archive."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flightsw.archive import ArchiveReader
from flightsw.exceptions import ArchiveError, ProtocolError
from flightsw.protocol import decode
from groundstation.demo.view import fmt_energy

__all__ = ["ArchiveFacts", "DemoResult", "archive_facts"]


@dataclass(frozen=True, slots=True)
class ArchiveFacts:
    """What the ground station's telemetry archive holds after the run."""

    records: int
    telemetry_nodes: list[str]
    done_job_ids: list[str]  # jobs whose latest archived epoch has a ``done`` result
    problems: list[str]


def archive_facts(telemetry_dir: Path, nodes: list[str]) -> ArchiveFacts:
    """Count records, nodes with telemetry and jobs done in the archive.

    A job counts as done when a ``done`` result carries the highest epoch any of its archived
    messages (uplink, events, results) carries: the ground's rule, which ignores a result
    from a node whose lease lapsed once the job was re-run with epoch + 1. (Were the re-run
    still waiting at the ground at the end, its new epoch would not be in the archive yet
    and the stale result would count; the job table is the authority.)
    """
    try:
        reader = ArchiveReader(telemetry_dir)
    except ArchiveError as exc:
        return ArchiveFacts(0, [], [], [str(exc)])
    with reader:
        records = len(reader)
        topics = reader.topics()
        with_tel = sorted(n for n in nodes if topics.get(f"odc/sat/{n}/telemetry", 0) > 0)
        latest: dict[str, int] = {}
        done_at: dict[str, set[int]] = {}
        topics_of_jobs = ["odc/sat/+/job", "odc/sat/+/event", "odc/sat/+/result"]
        for rec in reader.records(topics=topics_of_jobs, nodes=nodes):
            try:
                msg = decode(rec.payload)
            except ProtocolError:
                continue
            if not isinstance(msg, dict) or not isinstance(msg.get("epoch"), int):
                continue
            job, epoch = str(msg.get("job_id")), int(msg["epoch"])
            latest[job] = max(latest.get(job, epoch), epoch)
            if rec.topic.endswith("/result") and msg.get("status") == "done":
                done_at.setdefault(job, set()).add(epoch)
        done = sorted(job for job, epochs in done_at.items() if latest[job] in epochs)
        problems = [str(r) for r in reader.recovery]
    return ArchiveFacts(records, with_tel, done, problems)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """Every figure of the summary (also written as ``summary.json``)."""

    nodes: list[str]
    time_scale: float
    mission_s: float  # mission seconds the run lasted
    wall_s: float
    interrupted: bool
    submitted: int
    completed: int
    failed: int
    unfinished: int
    classifier_images: int
    classifier_correct: int
    energy_per_job_j: float | None
    energy_total_j: float
    migrations: int
    archive_dir: str
    archive_records: int
    telemetry_nodes: list[str]
    archived_done_results: int
    report_png: str | None
    report_error: str | None
    by_kind: dict[str, dict[str, float]]
    failed_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def accuracy(self) -> float | None:
        if not self.classifier_images:
            return None
        return self.classifier_correct / self.classifier_images

    def lines(self) -> list[str]:
        wall = f"{int(self.wall_s) // 60}:{int(self.wall_s) % 60:02d}"
        how = "interrupted after" if self.interrupted else "ran"
        kinds = ", ".join(
            f"{k} {fmt_energy(v['energy_per_job_j'])}" for k, v in self.by_kind.items()
            if v.get("done")
        )
        acc = (
            f"classifier accuracy: {100.0 * self.accuracy:.1f}% ({self.classifier_correct} of "
            f"{self.classifier_images} held-out digits labelled right)"
            if self.accuracy is not None
            else "classifier accuracy: n/a (no classifier job finished)"
        )
        report = (
            f"report: {self.report_png}"
            if self.report_png
            else f"report: not written ({self.report_error})"
        )
        return [
            f"demo {how} {self.mission_s / 60:.1f} mission minutes in {wall} wall "
            f"(x{self.time_scale:g}, {len(self.nodes)} nodes)",
            f"jobs completed: {self.completed}/{self.submitted} ({self.failed} failed, "
            f"{self.unfinished} unfinished at the end)",
            *(["failures: " + ", ".join(f"{n} {why}" for why, n in
                                         self.failed_by_reason.items())]
              if self.failed_by_reason else []),
            acc,
            f"energy per job: {fmt_energy(self.energy_per_job_j)} modelled compute energy "
            f"(mean of {self.completed} done jobs; {kinds or 'none'})",
            f"migrations: {self.migrations} (jobs handed between nodes over inter-satellite "
            "links)",
            f"archive: {self.archive_dir} ({self.archive_records} records; telemetry from "
            f"{len(self.telemetry_nodes)} of {len(self.nodes)} nodes)",
            report,
        ]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["accuracy"] = self.accuracy
        return data

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
