"""The demo's terminal view: a screen redrawn in place on a TTY, plain lines otherwise.

On a terminal the whole screen is redrawn a few times a second (cursor home, draw, clear to
end of screen): a header with mission time and progress, one row per node (light, charge,
temperature, power mode, queue, jobs done, migrations, ground contact), the job flow and the
latest events. Colour only when the terminal supports it and ``NO_COLOR`` is unset. When
stdout is a pipe or a file, events are printed as they happen and a status block every few
seconds, with no escape sequences at all.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from typing import TextIO

from flightsw.timeutil import format_iso
from groundstation.demo.state import DemoState

__all__ = ["PlainView", "Screen", "TtyView", "fmt_energy"]

_STYLES = {
    "sun": "33",
    "eclipse": "1;34",
    "bad": "1;31",
    "good": "32",
    "move": "1;35",
    "up": "36",
    "warn": "33",
    "dim": "2",
    "bold": "1",
    "head": "1;37;44",
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EVENT_ROWS = 9


def fmt_energy(joules: float | None) -> str:
    """Joules with an SI prefix (modelled compute energy is micro- to millijoules)."""
    if joules is None:
        return "-"
    for scale, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ")):
        if abs(joules) >= scale:
            return f"{joules / scale:.3g} {unit}"
    return f"{joules:.3g} J"


@dataclass(slots=True)
class Screen:
    """Styling helpers: ANSI colour and unicode bars only when wanted."""

    color: bool
    unicode: bool

    def paint(self, text: str, style: str) -> str:
        code = _STYLES.get(style)
        if not self.color or not code:
            return text
        return f"\x1b[{code}m{text}\x1b[0m"

    def bar(self, frac: float, cells: int = 10) -> str:
        frac = min(1.0, max(0.0, frac))
        full = round(frac * cells)
        on, off = ("\u2588", "\u2591") if self.unicode else ("#", ".")
        return on * full + off * (cells - full)

    @staticmethod
    def visible_len(text: str) -> int:
        return len(_ANSI.sub("", text))

    def clip(self, text: str, width: int) -> str:
        """Cut a (possibly coloured) line to ``width`` visible characters."""
        if self.visible_len(text) <= width:
            return text
        out: list[str] = []
        n = 0
        pos = 0
        for m in _ANSI.finditer(text):
            chunk = text[pos : m.start()]
            take = chunk[: max(0, width - n)]
            out.append(take)
            n += len(take)
            out.append(m.group())
            pos = m.end()
        out.append(text[pos:][: max(0, width - n)])
        return "".join(out) + ("\x1b[0m" if self.color else "")


def _mission(state: DemoState, t: float) -> str:
    return f"T+{(t - state.plan.epoch) / 60:5.1f}"


def _flow(state: DemoState) -> tuple[str, str]:
    c = state.counts()
    right, total = state.accuracy()
    acc = f"{100.0 * right / total:.1f}% of {total} images" if total else "-"
    line1 = (
        f"submitted {c['submitted']}  at ground {c['ground']}  on board {c['onboard']}  "
        f"done {c['done']}  failed {c['failed']}  migrations {state.migrations()}"
    )
    line2 = (
        f"classifier accuracy {acc}  energy/job {fmt_energy(state.energy_per_job_j())} "
        "(modelled compute)"
    )
    return line1, line2


@dataclass(slots=True)
class TtyView:
    """Full-screen view redrawn in place."""

    state: DemoState
    out: TextIO
    header: list[str]
    scale: float
    screen: Screen = field(default_factory=lambda: Screen(_want_color(), _want_unicode()))

    def start(self) -> None:
        self.out.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear the screen
        self.out.flush()

    def stop(self) -> None:
        self.out.write("\x1b[?25h\n")  # show the cursor again
        self.out.flush()

    def _node_row(self, i: int) -> str:
        s = self.screen
        st = self.state
        n = st.plan.nodes[i]
        tel = st.telemetry.get(n.node_id)
        if tel is None:
            return f" {n.node_id:<5} {n.profile[:22]:<22} " + s.paint("(waiting)", "dim")
        lit = tel.sunlit >= 0.5
        light = s.paint(f"{'sun' if lit else 'ECLIPSE':<7}", "sun" if lit else "eclipse")
        low = tel.soc < n.dod_floor + 0.05
        charge = s.paint(f"{s.bar(tel.soc)} {tel.soc:4.0%}",
                         "bad" if low else ("warn" if tel.soc < 0.5 else "good"))
        mode = "SAFE" if tel.safe_mode else tel.power_mode
        mode_cell = s.paint(f"{mode:<8}", "bad" if tel.safe_mode else "")
        link = st.contact.get(n.node_id)
        link_cell = s.paint(link, "up") if link else s.paint("-", "dim")
        queue = f"{tel.queue_depth}{'+1' if tel.jobs_running else ''}"
        mig = f"{tel.migrations_in}/{tel.migrations_out}"
        return (
            f" {n.node_id:<5} {n.profile[:22]:<22} {light} {charge} "
            f"{tel.temperature_c:5.1f}C  {mode_cell} {queue:>5} {tel.jobs_done:>5} "
            f"{mig:>10}  {link_cell}"
        )

    def render(self, t: float, progress: float, wall_s: float) -> str:
        s = self.screen
        st = self.state
        plan = st.plan
        width = max(60, shutil.get_terminal_size((120, 40)).columns)
        head = (
            f" flightsw demo  {len(plan.nodes)} nodes  x{self.scale:g}  "
            f"mission {format_iso(t)}  {_mission(st, t)} of {plan.duration_s / 60:.0f} min"
        )
        wall = f"{int(wall_s) // 60}:{int(wall_s) % 60:02d}"
        lines = [
            s.paint(head.ljust(min(width - 1, 104)), "head"),
            f" [{s.bar(progress, 40)}] {progress:4.0%}  wall {wall}",
            *(s.paint(" " + h, "dim") for h in self.header),
            "",
            s.paint(
                f" {'node':<5} {'profile':<22} {'light':<7} {'charge':<15} {'temp':>6}  "
                f"{'mode':<8} {'queue':>5} {'done':>5} {'mig in/out':>10}  ground link",
                "bold",
            ),
            *(self._node_row(i) for i in range(len(plan.nodes))),
        ]
        flow1, flow2 = _flow(st)
        lines += ["", s.paint(" jobs  ", "bold") + flow1, "       " + flow2, "",
                  s.paint(" events", "bold")]
        recent = list(st.events)[-_EVENT_ROWS:]
        for ev in recent:
            lines.append(f"  {s.paint(_mission(st, ev.t), 'dim')}  {s.paint(ev.text, ev.style)}")
        lines += [""] * (_EVENT_ROWS - len(recent))
        lines.append(s.paint(" Ctrl-C stops the demo cleanly", "dim"))
        return "\n".join(s.clip(line, width - 1) for line in lines)

    def draw(self, t: float, progress: float, wall_s: float) -> None:
        text = self.render(t, progress, wall_s)
        self.out.write("\x1b[H" + text.replace("\n", "\x1b[K\n") + "\x1b[K\x1b[J")
        self.out.flush()


@dataclass(slots=True)
class PlainView:
    """Line-oriented output for pipes and logs: events as they come, periodic status."""

    state: DemoState
    out: TextIO
    every_s: float = 10.0
    _printed_seq: int = 0
    _last_status: float = -1e9

    def start(self) -> None:
        return None

    def stop(self) -> None:
        self.draw_events()

    def draw_events(self) -> None:
        st = self.state
        for ev in st.events:
            if ev.seq > self._printed_seq:
                print(f"[{_mission(st, ev.t)} min] {ev.text}", file=self.out)
        self._printed_seq = st.event_seq
        self.out.flush()

    def draw(self, t: float, progress: float, wall_s: float) -> None:
        st = self.state
        self.draw_events()
        if wall_s - self._last_status < self.every_s:
            return
        self._last_status = wall_s
        stamp = f"[{_mission(st, t)} min]"
        flow1, flow2 = _flow(st)
        print(f"{stamp} {progress:.0%} of the run; jobs: {flow1}", file=self.out)
        print(f"{stamp}   {flow2}", file=self.out)
        for n in st.plan.nodes:
            tel = st.telemetry.get(n.node_id)
            if tel is None:
                print(f"{stamp}   {n.node_id:<5} (no telemetry yet)", file=self.out)
                continue
            mode = "SAFE" if tel.safe_mode else tel.power_mode
            print(
                f"{stamp}   {n.node_id:<5} {'sun' if tel.sunlit >= 0.5 else 'ECLIPSE':<7} "
                f"soc {tel.soc:4.0%} {tel.temperature_c:5.1f}C {mode:<8} "
                f"queue {tel.queue_depth:>3} done {tel.jobs_done:>4} "
                f"mig {tel.migrations_in}/{tel.migrations_out} "
                f"link {st.contact.get(n.node_id) or '-'}",
                file=self.out,
            )
        self.out.flush()


def _want_color() -> bool:
    return "NO_COLOR" not in os.environ and os.environ.get("TERM", "") not in ("", "dumb")


def _want_unicode() -> bool:
    enc = (getattr(sys.stdout, "encoding", None) or "").lower()
    return "utf" in enc
