"""The alarm book on disk, so alarms (and their acknowledgements) outlive a console restart.

One small JSON file in the ground's data directory (``console-alarms.json``), replaced
atomically (written beside it, then renamed) whenever the book changed. A restarted
console lists what was listed before: an alarm acknowledged stays acknowledged, one raised
and not yet acknowledged still asks for it, and the next telemetry of its node judges
whether its condition still holds.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from groundstation.console.alarms import AlarmBook
from groundstation.console.exceptions import ConsoleError

__all__ = ["FILENAME", "AlarmStore"]

FILENAME = "console-alarms.json"
_FORMAT = 1


class AlarmStore:
    """``load`` once at start, ``save`` when :attr:`AlarmBook.revision` moved."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / FILENAME
        self.saved_revision = -1

    def load(self, book: AlarmBook) -> int:
        """Restore ``book`` from the file (nothing if there is none); the alarms restored.
        A file that cannot be read back is a :class:`ConsoleError` naming it and why."""
        if not self.path.exists():
            return 0
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
                raise ValueError(f"format: expected {_FORMAT}, got "
                                 f"{doc.get('format') if isinstance(doc, dict) else doc!r}")
            book.restore(doc)
        except (OSError, UnicodeDecodeError) as exc:
            raise ConsoleError(f"alarms file {self.path}: cannot read it: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            what = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ConsoleError(
                f"alarms file {self.path}: not a console alarm book ({what}); "
                "move it away to start with no alarms"
            ) from exc
        self.saved_revision = book.revision
        return len(doc["alarms"])

    def dirty(self, book: AlarmBook) -> bool:
        return book.revision != self.saved_revision

    def encode(self, book: AlarmBook) -> tuple[int, str]:
        """The book's revision and its file text (taken in the event loop's thread)."""
        return book.revision, json.dumps({"format": _FORMAT, **book.state()},
                                         separators=(",", ":"))

    def write(self, revision: int, text: str) -> None:
        """Write ``text`` atomically (a crash leaves the old file or the new one); may run
        in a worker thread."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.saved_revision = revision

    def save(self, book: AlarmBook) -> None:
        """Write the book now."""
        self.write(*self.encode(book))
