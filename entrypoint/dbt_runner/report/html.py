"""report.html: the run as one page, for the person who clicks the link in Slack.

Rendered from the RunReport by Jinja2 with autoescaping (every model name and dbt
message is text, never markup), self-contained: styles inline, the model timeline
an inline SVG, no script, font or request to anywhere (a Content-Security-Policy
says so to the browser), so it opens the same from S3, a laptop or behind a proxy.
Failures come first; long lists are folded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cache
from html import escape

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from dbt_runner.report.diff import diff_table
from dbt_runner.report.model import STATUS_ICONS, NodeResult, RunReport

# The timeline's geometry, in SVG user units (the SVG scales to the page's width).
LABEL_WIDTH = 150
PLOT_WIDTH = 850
LANE_HEIGHT = 18
AXIS_HEIGHT = 22
SLOWEST = 10
FOLD_OVER = 15  # lists longer than this are folded
# The all-nodes table's rows at most: every node is in report.json and junit.xml, and a
# browser parses a 20,000-row table for a second more before the page is shown.
NODE_ROWS = 2_000


@dataclass
class Bar:
    x: float
    y: float
    width: float
    outcome: str
    title: str


@dataclass
class Tick:
    x: float
    label: str


@dataclass
class Timeline:
    bars: list[Bar]
    lanes: list[str]
    ticks: list[Tick]
    width: int
    height: int


def _ticks(span_s: float) -> list[Tick]:
    """About six ticks at a round interval."""
    steps = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
    step = next((s for s in steps if span_s / s <= 6), steps[-1])
    ticks, value = [], 0.0
    while value <= span_s + 1e-9:
        label = f"{value:g} s" if step < 60 else f"{value / 60:g} min"
        ticks.append(Tick(x=LABEL_WIDTH + value / span_s * PLOT_WIDTH, label=label))
        value += step
    return ticks


def executed(nodes: list[NodeResult]) -> list[NodeResult]:
    """Nodes that ran, with a start and an end: one bar each."""
    return [n for n in nodes if n.outcome != "skipped" and n.started_at and n.finished_at]


def slots(nodes: list[NodeResult]) -> list[int]:
    """For each node (sorted by start), the lane it runs in: the first one free when
    it starts. dbt names a new thread per phase; a lane is a concurrent slot, reused
    across phases, so there are never more lanes than nodes ran at once."""
    ends: list[datetime] = []  # when each lane is free again
    lanes = []
    for node in nodes:
        assert node.started_at and node.finished_at  # noqa: S101 (executed nodes)
        free = next((i for i, end in enumerate(ends) if end <= node.started_at), len(ends))
        if free == len(ends):
            ends.append(node.finished_at)
        else:
            ends[free] = node.finished_at
        lanes.append(free)
    return lanes


def timeline(nodes: list[NodeResult]) -> Timeline | None:
    """dbt Cloud's model timing view: one lane per concurrent slot, one bar per node."""
    ran = sorted(executed(nodes), key=lambda n: (n.started_at, n.finished_at))
    if not ran:
        return None
    start = min(n.started_at for n in ran if n.started_at)
    end = max(n.finished_at for n in ran if n.finished_at)
    span = max((end - start).total_seconds(), 0.001)
    lane_of = slots(ran)
    lanes = [f"slot {index + 1}" for index in range(max(lane_of) + 1)]
    bars = []
    for node, lane in zip(ran, lane_of, strict=True):
        assert node.started_at and node.finished_at  # noqa: S101 (filtered above)
        offset = (node.started_at - start).total_seconds()
        seconds = (node.finished_at - node.started_at).total_seconds()
        bars.append(
            Bar(
                x=round(LABEL_WIDTH + offset / span * PLOT_WIDTH, 2),
                y=AXIS_HEIGHT + lane * LANE_HEIGHT + 2,
                width=round(max(seconds / span * PLOT_WIDTH, 1.0), 2),
                outcome=node.outcome,
                title=f"{node.unique_id} · {node.phase} · {node.status} · {seconds:.2f} s",
            )
        )
    height = AXIS_HEIGHT + len(lanes) * LANE_HEIGHT + 4
    return Timeline(bars, lanes, _ticks(span), LABEL_WIDTH + PLOT_WIDTH + 10, height)


# The two parts with a line per node are built here, not in the template: at 20,000
# nodes the template's per-value work was most of the page's cost, and the page is
# written twice per run. Every text in them is escaped (html.escape: what the template's
# autoescape does, without a Markup object per value).


def bar_rects(bars: list[Bar]) -> Markup:
    """The timeline's bars, as SVG."""
    return Markup(  # noqa: S704 (every value in it is escaped)
        "".join(
            f'<rect class="bar {escape(bar.outcome)}" x="{bar.x}" y="{bar.y}" '
            f'width="{bar.width}" height="14"><title>{escape(bar.title)}</title></rect>\n'
            for bar in bars
        )
    )


def node_rows(nodes: list[NodeResult]) -> Markup:
    """The all-nodes table's rows."""
    return Markup(  # noqa: S704 (every value in it is escaped)
        "".join(
            f"<tr><td><code>{escape(node.unique_id)}</code></td><td>{escape(node.phase)}</td>"
            f'<td class="{escape(node.outcome)}">{escape(node.status)}</td>'
            f'<td class="num">{node.execution_time_s:.2f}</td>'
            f"<td>{escape(node.owner or '')}</td></tr>\n"
            for node in nodes
        )
    )


def _previous_report(report: RunReport) -> str | None:
    previous = report.history.previous_run if report.history else None
    if not previous or not report.links.run_url:
        return None
    return f"{report.links.run_url.rsplit('/', 1)[0]}/{previous}/report.html"


def _clock(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "?"


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("dbt_runner.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["clock"] = _clock
    environment.filters["diff_table"] = diff_table
    return environment


def render(report: RunReport) -> str:
    """The page, from the report as it stands."""
    ran = executed(report.nodes)
    skipped = sorted({n.unique_id for n in report.nodes if n.outcome == "skipped"})
    drawn = timeline(report.nodes)
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            report=report,
            icon=STATUS_ICONS.get(report.status, ""),
            counts=report.counts(),
            failures=report.failures(),
            timeline=drawn,
            bars=bar_rects(drawn.bars) if drawn else "",
            rows=node_rows(report.nodes[:NODE_ROWS]),
            rows_shown=min(len(report.nodes), NODE_ROWS),
            slowest=sorted(ran, key=lambda n: -n.execution_time_s)[:SLOWEST],
            skipped=skipped,
            deferred=report.state.deferred if report.state else [],
            previous=_previous_report(report),
            fold=FOLD_OVER,
        )
    )
