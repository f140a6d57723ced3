"""The demo's terminal view: a screen redrawn in place on a TTY, plain lines otherwise.

On a terminal a rich ``Live`` display is redrawn a few times a second: a header with mission
time and progress, one row per node (light, charge, temperature, power mode, queue, jobs
done, migrations, ground contact), the job flow and the latest events. Colour only when the
terminal supports it and ``NO_COLOR`` is unset (rich decides). When stdout is a pipe or a
file, events are printed as they happen and a status block every few seconds, with no
escape sequences at all.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from flightsw.timeutil import format_iso
from groundstation.console.units import si
from groundstation.demo.state import DemoState

__all__ = ["PlainView", "TtyView", "fmt_energy"]

# the styles of the demo's events (DemoState.add_event) and cells, in rich's terms
_STYLES = {
    "sun": "yellow",
    "eclipse": "bold blue",
    "bad": "bold red",
    "good": "green",
    "move": "bold magenta",
    "up": "cyan",
    "warn": "yellow",
    "dim": "dim",
    "bold": "bold",
    "head": "bold white on blue",
}
_EVENT_ROWS = 9


def fmt_energy(joules: float | None) -> str:
    """Joules with an SI prefix (modelled compute energy is micro- to millijoules)."""
    return si(joules, "J", ascii_only=True)


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
    """Full-screen view redrawn in place (a rich ``Live`` display on ``out``)."""

    state: DemoState
    out: TextIO
    header: list[str]
    scale: float
    console: Console | None = None
    _live: Live | None = field(default=None, init=False)

    def _console(self) -> Console:
        if self.console is None:
            self.console = Console(file=self.out)
        return self.console

    def start(self) -> None:
        self._live = Live(console=self._console(), auto_refresh=False, screen=False,
                          transient=False, redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _nodes(self) -> Table:
        st = self.state
        tab = Table(box=None, pad_edge=False, header_style="bold")
        for name, right in (("node", False), ("profile", False), ("light", False),
                            ("charge", False), ("temp", True), ("mode", False),
                            ("queue", True), ("done", True), ("mig in/out", True),
                            ("ground link", False)):
            tab.add_column(name, justify="right" if right else "left", no_wrap=True)
        for n in st.plan.nodes:
            tel = st.telemetry.get(n.node_id)
            if tel is None:
                tab.add_row(n.node_id, n.profile[:22], Text("(waiting)", "dim"))
                continue
            lit = tel.sunlit >= 0.5
            low = tel.soc < n.dod_floor + 0.05
            full = round(10 * min(1.0, max(0.0, tel.soc)))
            charge = Text(f"{'#' * full}{'.' * (10 - full)} {tel.soc:4.0%}",
                          _STYLES["bad" if low else ("warn" if tel.soc < 0.5 else "good")])
            mode = "SAFE" if tel.safe_mode else tel.power_mode
            link = st.contact.get(n.node_id)
            tab.add_row(
                n.node_id,
                n.profile[:22],
                Text("sun" if lit else "ECLIPSE", _STYLES["sun" if lit else "eclipse"]),
                charge,
                f"{tel.temperature_c:5.1f}C",
                Text(mode, _STYLES["bad"] if tel.safe_mode else ""),
                f"{tel.queue_depth}{'+1' if tel.jobs_running else ''}",
                str(tel.jobs_done),
                f"{tel.migrations_in}/{tel.migrations_out}",
                Text(link, _STYLES["up"]) if link else Text("-", "dim"),
            )
        return tab

    def renderable(self, t: float, progress: float, wall_s: float) -> Group:
        st = self.state
        plan = st.plan
        wall = f"{int(wall_s) // 60}:{int(wall_s) % 60:02d}"
        head = (f" flightsw demo  {len(plan.nodes)} nodes  x{self.scale:g}  "
                f"mission {format_iso(t)}  {_mission(st, t)} of {plan.duration_s / 60:.0f} min")
        bar = Table.grid(padding=(0, 1))
        bar.add_row(ProgressBar(total=1.0, completed=min(1.0, max(0.0, progress)), width=40),
                    f"{progress:4.0%}  wall {wall}")
        flow1, flow2 = _flow(st)
        events = Table.grid(padding=(0, 2))
        recent = list(st.events)[-_EVENT_ROWS:]
        for ev in recent:
            events.add_row(Text(_mission(st, ev.t), "dim"),
                           Text(ev.text, _STYLES.get(ev.style, "")))
        for _ in range(_EVENT_ROWS - len(recent)):
            events.add_row("", "")
        return Group(
            Text(head, _STYLES["head"]),
            bar,
            *(Text(" " + h, "dim") for h in self.header),
            Text(""),
            self._nodes(),
            Text(""),
            Text.assemble((" jobs  ", "bold"), flow1),
            Text("       " + flow2),
            Text(""),
            Text(" events", "bold"),
            events,
            Text(" Ctrl-C stops the demo cleanly", "dim"),
        )

    def render(self, t: float, progress: float, wall_s: float) -> str:
        """The screen as plain text (no colour), e.g. for tests and logs."""
        console = Console(width=max(100, self._console().width), record=True,
                          color_system=None, file=io.StringIO())
        console.print(self.renderable(t, progress, wall_s))
        return console.export_text()

    def draw(self, t: float, progress: float, wall_s: float) -> None:
        if self._live is None:
            self.start()
        assert self._live is not None
        self._live.update(self.renderable(t, progress, wall_s), refresh=True)


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


