"""Benchmark the lint phase on the generated project, as ratios in one session:

1. The lint phase of a run (SQLFluff's dbt templater on the manifest the run parsed
   for its other phases) against SQLFluff's own CLI with the same templater and config
   on the same files (`sqlfluff lint --templater dbt`, the separate step teams run
   today, which imports dbt and parses the project again). The whole `dbt-runner lint`
   verb (deps and parse included) is reported beside it.
2. A slim job's lint of one modified file against the lint of every file.

Usage: python benchmarks/bench_lint.py [--models 500]
Writes build/bench/lint.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.project import BIN, as_in_the_image, generate, profile, runner_env, write_results
from dbt_runner.jobs.lint import DEFAULT_CONFIG


def timed(command: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode not in (0, 1):  # 1: findings
        sys.exit(f"{' '.join(command[:3])} failed:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    return elapsed


def report(env: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        (Path(env["DBT_RUNNER_ARTIFACTS_URL"]) / "report.json").read_text()
    )
    return data


def lint_phase(data: dict[str, Any]) -> float:
    return float(next(p["duration_s"] for p in data["phases"] if p["name"] == "lint"))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    args = parser.parse_args()
    as_in_the_image()
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-lint-") as tmp:
        base = Path(tmp)
        project = generate(base / "project", args.models, rows=1000)
        env = runner_env(base, project)
        runner = timed([str(BIN / "dbt-runner"), "lint"], env)
        full = report(env)
        files = len(full["lint"]["files"])
        print(f"dbt-runner lint: {runner:.1f} s ({files} files)", flush=True)

        # SQLFluff's own CLI: the same config, templater and files; it parses the project.
        profiles = profile(base / "profiles", base / "warehouse.duckdb", 4)
        (project / ".sqlfluff").write_text(
            DEFAULT_CONFIG.replace("templater = dbt", "templater = dbt\ndialect = duckdb")
            + f"\n[sqlfluff:templater:dbt]\nprofiles_dir = {profiles}\n"
        )
        cli = timed([str(BIN / "sqlfluff"), "lint", "--processes", "1", "models"], env, project)
        (project / ".sqlfluff").unlink()
        print(f"sqlfluff lint (CLI): {cli:.1f} s", flush=True)

        # One modified file, in a slim job, against the state of a full one.
        assert (
            subprocess.run(
                [str(BIN / "dbt-runner"), "run"], env=env, capture_output=True, check=False
            ).returncode
            == 0
        )
        leaf = sorted((project / "models" / "layers").glob("m_*.sql"))[-1]
        leaf.write_text(leaf.read_text() + "-- changed\n")
        timed([str(BIN / "dbt-runner"), "run", "--job", "slim", "--phases", "deps,lint"], env)
        slim = report(env)
        assert slim["lint"]["files"] == [f"models/layers/{leaf.name}"], slim["lint"]["files"]
        results = {
            "models": args.models,
            "files": files,
            "runner_lint_s": round(runner, 1),
            "runner_lint_phase_s": lint_phase(full),
            "sqlfluff_cli_s": round(cli, 1),
            "ratio": round(lint_phase(full) / cli, 3),
            "one_file_lint_phase_s": lint_phase(slim),
            "one_file_ratio": round(lint_phase(slim) / lint_phase(full), 4),
        }
    write_results("lint", results)


if __name__ == "__main__":
    main()
