"""Ground segment: job submission, telemetry archive, replay and reports (see README.md)."""

__version__ = "0.1.0"
