"""Publish: a run's artifacts and reports, and the latest docs, to file:// or s3://.

Layout under the artifacts URL:
    <project>/<env>/runs/<run_id>/   every run: dbt artifacts, dbt.log, reports
    <project>/<env>/docs/            the latest docs site, replaced only when generated,
                                     and the latest run's page (report.html)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from pathlib import Path

from dbt_runner.report.model import Links, RunReport
from dbt_runner.storage import Storage, join_key
from dbt_runner.storage.keys import docs_key, last_run_key, run_key

log = logging.getLogger(__name__)

# dbt's artifacts, as written to the target folder.
ARTIFACTS = (
    "manifest.json",
    "run_results.json",
    "sources.json",
    "catalog.json",
    "semantic_manifest.json",
    "index.html",
    "static_index.html",
)
DOCS_FILES = ("index.html", "static_index.html", "manifest.json", "catalog.json")
PAGE = "report.html"  # the run page: in the run's folder, and the latest beside the docs
FINAL = ("report.json", PAGE)  # rewritten once notifying is timed (and all, on a new error)
RUNNING = "running"  # last_run.json's status while a run has not finished


def link(storage: Storage, key: str, public_url: str | None) -> str:
    """Where a person opens `key`: the public http(s) address when there is one."""
    return f"{public_url}/{key}" if public_url else storage.url_for(key)


def run_links(storage: Storage, project: str, report: RunReport, public_url: str | None) -> Links:
    """Where this run's files and page are (or will be) published.
    `storage`: the artifacts'; `project`: its name; `report`: the run's; `public_url`:
    DBT_RUNNER_ARTIFACTS_PUBLIC_URL (None: the storage's own URLs)."""
    prefix = run_key(project, report.env, report.run_id)
    return Links(
        run_url=link(storage, prefix, public_url),
        report_url=link(storage, join_key(prefix, PAGE), public_url),
    )


def publish_artifacts(
    storage: Storage,
    project: str,
    report: RunReport,
    target_path: Path,
    log_path: Path | None,
    public_url: str | None = None,
) -> tuple[list[str], str | None]:
    """Upload this run's dbt artifacts and log; replace the docs if they were generated.
    The files published, and the docs' address when they were.
    `storage`: the artifacts'; `project`: its name; `report`: the run's; `target_path`:
    dbt's target folder; `log_path`: dbt's log folder; `public_url`: as `run_links`'."""
    prefix = run_key(project, report.env, report.run_id)
    files = [(name, target_path / name) for name in ARTIFACTS]
    files += [
        (path.relative_to(target_path).as_posix(), path)
        for path in sorted((target_path / "phases").glob("*/run_results.json"))
    ]
    if log_path is not None:
        files.append(("dbt.log", log_path / "dbt.log"))
    published = []
    for name, path in files:
        if path.is_file():
            storage.put_file(join_key(prefix, name), path)
            published.append(name)
    docs = next((p for p in report.phases if p.name == "docs"), None)
    if docs is None or docs.status != "success":
        return published, None
    return published, publish_docs(storage, project, report.env, target_path, public_url)


def publish_docs(
    storage: Storage, project: str, env: str, target_path: Path, public_url: str | None
) -> str:
    """The docs site this run generated replaces the last one; its address.
    `storage`: the artifacts'; `project`, `env`: whose docs; `target_path`: where dbt
    generated them; `public_url`: as `run_links`'."""
    docs_prefix = docs_key(project, env)
    published = []
    for name in DOCS_FILES:
        path = target_path / name
        if path.is_file():
            storage.put_file(join_key(docs_prefix, name), path)
            published.append(join_key(docs_prefix, name))
    # Files of an older docs site that this one no longer has.
    keep = {*published, join_key(docs_prefix, PAGE)}  # the latest run's page stays
    stale = [key for key in storage.list_keys(docs_prefix) if key not in keep]
    storage.delete(stale)
    docs_url = link(storage, join_key(docs_prefix, "index.html"), public_url)
    log.info("docs published to %s", docs_url)
    return docs_url


def publish_reports(
    storage: Storage,
    project: str,
    report: RunReport,
    paths: list[Path],
    only: Collection[str] | None = None,
    last_run: bool = False,
) -> None:
    """Upload the report files next to the run's artifacts, and the run page beside the
    docs too; then, for a run that marked its start (`last_run`), record how it ended
    in last_run.json (what `dbt-runner retry` starts from). `only`: just these files
    (the final upload, of what notifying changed).
    `storage`: the artifacts'; `project`: its name; `report`: the run's; `paths`: the report
    files written."""
    prefix = run_key(project, report.env, report.run_id)
    for path in paths:
        if only is not None and path.name not in only:
            continue
        storage.put_file(join_key(prefix, path.name), path)
        if path.name == PAGE:
            storage.put_file(join_key(docs_key(project, report.env), PAGE), path)
    if last_run:
        _write_last_run(storage, project, report, report.status)


def mark_started(storage: Storage, project: str, report: RunReport) -> None:
    """Before dbt starts: this run is the last one, and has not finished. A run killed
    outright (SIGKILL, out of memory) leaves this mark, so a retry knows it."""
    _write_last_run(storage, project, report, RUNNING)


def _write_last_run(storage: Storage, project: str, report: RunReport, status: str) -> None:
    last = {
        "run_id": report.run_id,
        "status": status,
        "job": report.job,
        "started_at": report.started_at.isoformat(),
    }
    storage.put_bytes(last_run_key(project, report.env), json.dumps(last).encode())


def read_last_run(storage: Storage, project: str, env: str) -> dict[str, str] | None:
    """The last run that reached dbt: run_id, status ("running" until it finished), job."""
    data = storage.get_bytes(last_run_key(project, env))
    return json.loads(data) if data is not None else None
