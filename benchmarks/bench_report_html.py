"""Benchmark the run page (report.html) of a large run, as figures and ratios in one
session:

1. Its size, raw and gzipped (what S3 or a proxy serves), for a run of N nodes
   (models and tests on 8 threads, a few failures with their compiled SQL).
2. The time to render it from the RunReport (Jinja2), against writing report.json;
   and the report files as a run writes them (all of them, then the final rewrite of
   report.json and the page after notifying).
3. The time headless Chromium takes to load and lay it out (`--dump-dom`), against
   the same browser loading a blank page (its own start-up), median of 3 each.

Usage: python benchmarks/bench_report_html.py [--nodes 2000]
Writes build/bench/report_html.json.
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import write_results
from dbt_runner.outputs.publish import FINAL
from dbt_runner.report.files import write_report_files
from dbt_runner.report.html import render
from dbt_runner.report.model import NodeResult, PhaseResult, RunReport
from tests.browser import headless

THREADS = 8
SQL = "select\n    o.order_id,\n    sum(p.amount) as amount\nfrom orders as o\n" * 5


def node(index: int, start: datetime) -> NodeResult:
    kind = "model" if index % 3 else "test"
    failed = index % 500 == 7
    began = start + timedelta(seconds=index * 0.05)
    return NodeResult(
        unique_id=f"{kind}.big.node_{index:05d}",
        name=f"node_{index:05d}",
        resource_type=kind,
        phase="build",
        status="error" if failed else ("success" if kind == "model" else "pass"),
        outcome="failed" if failed else "ok",
        execution_time_s=0.4 + (index % 17) / 10,
        message="Database Error in model: column x does not exist" if failed else None,
        path=f"models/marts/node_{index:05d}.sql",
        started_at=began,
        finished_at=began + timedelta(seconds=0.4 + (index % 17) / 10),
        thread=f"Thread-{index % THREADS + 1} (worker)",
        owner="finance" if index % 4 == 0 else None,
        compiled_sql=SQL if failed else None,
    )


def big_report(count: int) -> RunReport:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    report = RunReport(
        runner_version="bench",
        env="prod",
        job="full",
        run_id="bench",
        project="big",
        started_at=start,
    )
    report.nodes = [node(i, start) for i in range(count)]
    counts = {"ok": count - count // 500, "warn": 0, "failed": count // 500, "skipped": 0}
    build = PhaseResult(name="build", status="failed", duration_s=count * 0.05, counts=counts)
    report.phases = [build]
    report.finish()
    return report


def median_seconds(action: Any, times: int = 3) -> float:
    spent = []
    for _ in range(times):
        started = time.perf_counter()
        action()
        spent.append(time.perf_counter() - started)
    return statistics.median(spent)


def write_twice(report: RunReport, folder: Path) -> None:
    """The report files as run/finish.py writes them."""
    write_report_files(report, folder)
    write_report_files(report, folder, FINAL)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=2000)
    args = parser.parse_args()
    report = big_report(args.nodes)
    html = render(report)
    render_s = median_seconds(lambda: render(report))
    json_s = median_seconds(lambda: report.model_dump_json(indent=2))
    with tempfile.TemporaryDirectory() as folder:
        files_s = median_seconds(lambda: write_twice(report, Path(folder) / "files"))
        page, blank = Path(folder) / "report.html", Path(folder) / "blank.html"
        page.write_text(html)
        blank.write_text("<!DOCTYPE html><title>blank</title>")
        dom = headless(page.as_uri(), "--dump-dom")
        bars = dom.count('class="bar ')
        if bars != args.nodes:
            sys.exit(f"the timeline has {bars} bars for {args.nodes} nodes")
        page_s = median_seconds(lambda: headless(page.as_uri(), "--dump-dom"))
        blank_s = median_seconds(lambda: headless(blank.as_uri(), "--dump-dom"))
    result = {
        "nodes": args.nodes,
        "size_bytes": len(html.encode()),
        "gzip_bytes": len(gzip.compress(html.encode())),
        "render_s": round(render_s, 3),
        "report_json_s": round(json_s, 3),
        "render_vs_json": round(render_s / json_s, 2),
        "report_files_s": round(files_s, 3),
        "chromium_page_s": round(page_s, 2),
        "chromium_blank_s": round(blank_s, 2),
        "chromium_page_vs_blank": round(page_s / blank_s, 2),
        "chromium_page_over_blank_s": round(page_s - blank_s, 2),
    }
    write_results(f"report_html-{args.nodes}", result)


if __name__ == "__main__":
    main()
