"""Command line: `dbt-runner [run|check|plan|version|dbt -- ARGS] [flags]`.

Flags override DBT_RUNNER_* variables, so a workflow can change `--select` without a
new image. Heavy imports (pydantic, dbt) wait until a verb needs them: `version`
answers from package metadata alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

VERBS = ("run", "retry", "check", "plan", "version", "dbt")

# flag -> (settings field, argparse options)
FLAGS: dict[str, tuple[str, dict[str, Any]]] = {
    "--project-dir": ("project_dir", {"metavar": "DIR"}),
    "--profiles-dir": ("profiles_dir", {"metavar": "DIR"}),
    "--target": ("target", {}),
    "--env": ("env", {"help": "environment name used in paths and reports (dev, prod)"}),
    "--job": ("job", {"help": "full | slim | custom"}),
    "--phases": ("phases", {"help": "comma-separated: deps,debug,seed,build,freshness,docs"}),
    "--select": ("select", {"metavar": "SPEC"}),
    "--exclude": ("exclude", {"metavar": "SPEC"}),
    "--selector": ("selector", {}),
    "--threads": ("threads", {}),
    "--vars": ("vars", {"help": "JSON or YAML mapping, as dbt's --vars"}),
    "--full-refresh": ("full_refresh", {"action": argparse.BooleanOptionalAction}),
    "--fail-fast": ("fail_fast", {"action": argparse.BooleanOptionalAction}),
    "--artifacts-url": ("artifacts_url", {"metavar": "URL"}),
    "--report-dir": ("report_dir", {"metavar": "DIR"}),
    "--log-format": ("log_format", {"help": "text | json"}),
    "--run-id": ("run_id", {}),
}
SHORT = {"--select": "-s", "--target": "-t"}


class _Parser(argparse.ArgumentParser):
    """Bad flags are a configuration error: exit 3, one line (argparse would exit 2)."""

    def error(self, message: str) -> Any:
        from entrypoint.errors import ConfigError

        raise ConfigError(f"{self.prog}: {message}; see --help")


def _parser(verb: str) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"dbt-runner {verb}",
        description="Settings come from DBT_RUNNER_* variables; these flags override them.",
    )
    for flag, (dest, options) in FLAGS.items():
        names = [flag] + ([SHORT[flag]] if flag in SHORT else [])
        parser.add_argument(*names, dest=dest, default=None, **options)
    if verb in ("plan", "check"):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    if verb == "retry":
        parser.add_argument(
            "--from-run", dest="retry_of", metavar="RUN_ID", help="default: the last run"
        )
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from entrypoint.settings import load_settings

    overrides = {
        dest: getattr(args, dest) for dest, _ in FLAGS.values() if getattr(args, dest) is not None
    }
    # Name the flag in errors only for values that came from a flag.
    flags = {dest: flag for flag, (dest, _) in FLAGS.items() if dest in overrides}
    return load_settings(overrides, flags)


def cmd_version(as_json: bool = False) -> int:
    from entrypoint.versions import adapters, dbt_version, runner_version

    installed = adapters()
    if as_json:
        info = {"dbt-runner": runner_version(), "dbt-core": dbt_version(), "adapters": installed}
        print(json.dumps(info, indent=2))
        return 0
    print(f"dbt-runner {runner_version()}")
    print(f"dbt-core {dbt_version()}")
    for name, version in installed.items():
        print(f"dbt-{name} {version}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from entrypoint.profiles import check_adapter, existing_profiles_dir
    from entrypoint.project import describe_project

    settings = _settings(args)
    project = describe_project(settings.project_dir)
    check_adapter(settings, project)
    existing = existing_profiles_dir(settings, project)
    effective = {
        "settings": settings.redacted(),
        "project": {"name": project.name, "profile": project.profile},
        "profile": str(existing / "profiles.yml")
        if existing
        else f"rendered for {settings.warehouse.type.value}",
        "phases": [phase.value for phase in settings.job_phases],
    }
    if args.as_json:
        print(json.dumps(effective, indent=2, default=str))
    else:
        summary = f"project {project.name}, env {settings.env}, job {settings.job.value}"
        print(f"configuration OK: {summary}")
        print(json.dumps(effective, indent=2, default=str))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from pathlib import Path

    from entrypoint.phases import DbtInvocation, plan
    from entrypoint.profiles import check_adapter, existing_profiles_dir
    from entrypoint.project import describe_project

    settings = _settings(args)
    project = describe_project(settings.project_dir)
    name = project.name
    check_adapter(settings, project)
    existing = existing_profiles_dir(settings, project)
    profiles_dir = existing or Path(settings.work_dir, "runs", settings.run_id, "profiles")
    invocation = DbtInvocation(
        project_dir=settings.project_dir,
        profiles_dir=profiles_dir,
        target=settings.target if existing else (settings.target or settings.env),
        vars=settings.vars,
    )
    state_dir, state_note = _planned_state(settings, name)
    commands = plan(settings, invocation, state_dir)
    if args.as_json:
        print(json.dumps([{"phase": phase, "args": argv} for phase, argv in commands], indent=2))
        return 0
    print(f"# project {name}, env {settings.env}, job {settings.job.value}, run {settings.run_id}")
    if state_note:
        print(f"# {state_note}")
    for phase, argv in commands:
        print(f"{phase:<10} dbt {' '.join(argv)}")
    return 0


def _planned_state(settings: Any, project: str) -> tuple[Any, str | None]:
    """For a slim job: the state folder run would use, and a note on the state found."""
    from entrypoint.settings import Job
    from entrypoint.state import StateError, StateStore
    from entrypoint.storage import open_storage

    if settings.job is not Job.SLIM or settings.state_url is None:
        return None, None
    env = settings.slim.defer_env or settings.env
    store = StateStore(open_storage(settings.state_url, settings.aws), project, env)
    try:
        pointer = store.latest()
    except StateError as exc:
        return None, f"slim: the state at {store.url()} is unusable ({exc}): run builds everything"
    if pointer is None:
        return None, f"slim: no state yet at {store.url()}: run builds everything"
    folder = settings.work_dir / "runs" / settings.run_id / "state"
    return folder, f"slim: changes since run {pointer.run_id} ({store.url()}), deferring to it"


def cmd_run(args: argparse.Namespace) -> int:
    from entrypoint import logs
    from entrypoint.errors import ConfigError
    from entrypoint.pipeline import retry, run

    try:
        settings = _settings(args)
    except ConfigError as exc:
        from entrypoint.notify import notify_invalid_settings

        notify_invalid_settings(exc.message)
        raise
    logs.setup(
        settings.log_format.value,
        {"run_id": settings.run_id, "env": settings.env, "job": settings.job.value},
    )
    if getattr(args, "retry_of", False) is not False:  # the retry verb
        return retry(settings, args.retry_of)
    return run(settings)


def cmd_dbt(argv: list[str]) -> int:
    """Pass ARGS to dbt, with the runner's profile and environment."""
    from entrypoint.passthrough import run_dbt

    return run_dbt(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verb = argv.pop(0) if argv and argv[0] in VERBS else "run"
    if verb == "version":
        return cmd_version("--json" in argv)
    if verb == "dbt":
        return _guarded(lambda: cmd_dbt(argv[1:] if argv[:1] == ["--"] else argv))
    commands = {"run": cmd_run, "retry": cmd_run, "check": cmd_check, "plan": cmd_plan}
    return _guarded(lambda: commands[verb](_parser(verb).parse_args(argv)))


def _guarded(command: Any) -> int:
    """Run a verb; a RunnerError raised before the run starts becomes one line."""
    from entrypoint.errors import RunnerError
    from entrypoint.logs import error_line

    try:
        return int(command())
    except RunnerError as exc:
        print(error_line(exc.message), file=sys.stderr)
        return int(exc.exit_code)


if __name__ == "__main__":
    sys.exit(main())
