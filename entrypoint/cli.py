"""Command line: `dbt-runner [run|retry|lint|cleanup|check|plan|version|dbt -- ARGS]`.

Flags override DBT_RUNNER_* variables, so a workflow can change `--select` without a
new image; each flag is declared on its settings field (settings.py). Heavy imports
(pydantic, dbt) wait until a verb needs them: `version` answers from package metadata.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from entrypoint.startup import thaw

# Every verb, and what it does in one line (the top-level help lists them).
VERBS = {
    "run": "run the job (the default verb)",
    "retry": "re-run what the last run (or --from-run RUN_ID) did not finish",
    "lint": "lint the project's SQL (SQLFluff, dbt templater); findings fail it",
    "cleanup": "drop a pull request's schemas (--pr N)",
    "check": "validate the settings and print them, secrets redacted",
    "plan": "print every dbt command `run` would make, and what it would find; runs nothing",
    "version": "the runner's version, dbt-core's and each adapter's",
    "dbt": "any dbt command, with the runner's project, profile and secrets: dbt -- ARGS",
}
HELP = ("help", "--help", "-h")


def top_level_help() -> str:
    verbs = "\n".join(f"  {verb:<9} {what}" for verb, what in VERBS.items())
    return (
        "usage: dbt-runner [VERB] [FLAGS]\n\n"
        "Run a dbt project as a production job. Settings come from DBT_RUNNER_* variables;\n"
        "flags override them. The verb defaults to run.\n\n"
        f"verbs:\n{verbs}\n\n"
        "`dbt-runner VERB --help` lists a verb's flags (README: Settings).\n"
    )


class _Parser(argparse.ArgumentParser):
    """Bad flags are a configuration error: exit 3, one line (argparse would exit 2)."""

    def error(self, message: str) -> Any:
        from entrypoint.errors import ConfigError

        raise ConfigError(f"{self.prog}: {message}; see --help")


def flags() -> dict[str, str]:
    """Every flag and the settings field it sets, from the fields' declarations."""
    from entrypoint.settings import Settings

    found = {}
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("flag"):
            found[str(extra["flag"])] = name
    return found


def _parser(verb: str) -> argparse.ArgumentParser:
    from entrypoint.settings import Settings

    parser = _Parser(
        prog=f"dbt-runner {verb}",
        description=f"{VERBS[verb][0].upper()}{VERBS[verb][1:]}. Settings come from "
        "DBT_RUNNER_* variables; these flags override them.",
    )
    for flag, name in flags().items():
        field = Settings.model_fields[name]
        extra: Any = field.json_schema_extra
        names = [flag] + ([extra["short"]] if extra.get("short") else [])
        options: dict[str, Any] = {"dest": name, "default": None, "help": field.description}
        if field.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        parser.add_argument(*names, **options)
    if verb in ("plan", "check"):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    if verb == "retry":
        parser.add_argument(
            "--from-run", dest="retry_of", metavar="RUN_ID", help="default: the last run"
        )
    return parser


def _settings(args: argparse.Namespace, **fixed: Any) -> Any:
    """The settings, flags over the environment; `fixed` values are the verb's own."""
    from entrypoint.settings import load_settings

    by_field = {name: flag for flag, name in flags().items()}
    overrides = {name: getattr(args, name) for name in by_field if getattr(args, name) is not None}
    # Name the flag in errors only for values that came from a flag.
    return load_settings(overrides | fixed, {name: by_field[name] for name in overrides})


def cmd_version(as_json: bool = False) -> int:
    from entrypoint.versions import adapters, dbt_version, packages, runner_version

    installed = adapters()
    if as_json:
        info = {
            "dbt-runner": runner_version(),
            "dbt-core": dbt_version(),
            "adapters": installed,
            "packages": packages(),
        }
        print(json.dumps(info, indent=2))
        return 0
    print(f"dbt-runner {runner_version()}")
    print(f"dbt-core {dbt_version()}")
    for name, version in installed.items():
        print(f"dbt-{name} {version}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from entrypoint.workspace import describe_workspace

    settings = _settings(args)
    workspace = describe_workspace(settings)
    project, profile = workspace.project, workspace.profile
    effective = {
        "settings": settings.redacted(),
        "project": {"name": project.name, "profile": project.profile},
        "runs_in": str(project.dir),
        "profile": str(profile.dir / "profiles.yml")
        if not profile.rendered
        else f"rendered for {settings.warehouse.type.value} into {profile.dir}",
        "phases": [phase.value for phase in settings.job_phases],
    }
    if not args.as_json:
        summary = f"project {project.name}, env {settings.env}, job {settings.job.value}"
        print(f"configuration OK: {summary}")
    print(json.dumps(effective, indent=2, default=str))
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from entrypoint.phases import plan
    from entrypoint.state import Baseline, look_up_state
    from entrypoint.versions import dbt_version
    from entrypoint.workspace import describe_workspace

    settings = _settings(args)
    workspace = describe_workspace(settings)
    name = workspace.project.name
    target = workspace.identify_target()
    found = look_up_state(settings, name, target, dbt_version())
    baseline = None
    if found is not None and found.usable:
        baseline = Baseline(settings.run_dir / "state", found.baseline_extra())
    commands = plan(settings, workspace.invocation(), baseline)
    if args.as_json:
        print(json.dumps([{"phase": phase, "args": argv} for phase, argv in commands], indent=2))
        return 0
    print(f"# project {name}, env {settings.env}, job {settings.job.value}, run {settings.run_id}")
    if workspace.project.dir != workspace.project.source_dir:
        print(f"# the project folder is read-only: dbt runs a copy in {workspace.project.dir}")
    for note in _plan_notes(settings, name, target, found):
        print(f"# {note}")
    for phase, argv in commands:
        tool = "" if argv[0] == "sqlfluff" else "dbt "
        print(f"{phase:<10} {tool}{' '.join(argv)}")
    return 0


def _plan_notes(settings: Any, project: str, target: Any, found: Any) -> list[str]:
    """What `run` would find before dbt starts: the target, the state, the last run."""
    from entrypoint import ledger
    from entrypoint.publish import RUNNING, read_last_run
    from entrypoint.settings import STATE_JOBS
    from entrypoint.storage import open_storage

    notes = [f"target: {target.describe() if target else 'known at run time'}"]
    vanishing = ledger.vanishing(target, settings)
    notes += [f"warning: {vanishing}"] if vanishing else []
    if found is not None and found.usable:
        run_id, url = found.pointer.run_id, found.store.url()
        notes.append(f"{settings.job.value}: changes since run {run_id} ({url}), deferring to it")
    elif found is not None and settings.job in STATE_JOBS:
        notes.append(found.why_not(settings.job))
    last = read_last_run(open_storage(settings.artifacts_url, settings.aws), project, settings.env)
    if last is not None and last["status"] == RUNNING:
        notes.append(
            f"the last run, {last['run_id']}, did not finish (killed, or still running): "
            "retry would refuse it"
        )
    return notes


def _run_settings(args: argparse.Namespace, **fixed: Any) -> Any:
    """Settings for a verb that runs: a bad one still tells the channels; logs set up."""
    from entrypoint import logs
    from entrypoint.errors import ConfigError

    try:
        settings = _settings(args, **fixed)
    except ConfigError as exc:
        from entrypoint.notify import notify_invalid_settings

        notify_invalid_settings(exc.message)
        raise
    logs.setup(
        settings.log_format.value,
        {"run_id": settings.run_id, "env": settings.env, "job": settings.job.value},
    )
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    settings = _run_settings(args)
    if getattr(args, "retry_of", False) is not False:  # the retry verb
        from entrypoint.retry import retry

        return retry(settings, args.retry_of)
    from entrypoint.pipeline import run

    return run(settings)


def cmd_lint(args: argparse.Namespace) -> int:
    """The lint phase alone, for a developer's machine: findings fail it (exit 1)."""
    from entrypoint.pipeline import run

    return run(_run_settings(args, job="custom", phases="deps,lint", advisory_phases=""))


def cmd_cleanup(args: argparse.Namespace) -> int:
    from entrypoint.cleanup import cleanup

    return cleanup(_run_settings(args))


def cmd_dbt(argv: list[str]) -> int:
    """Pass ARGS to dbt, with the runner's profile and environment."""
    from entrypoint.passthrough import run_dbt

    return run_dbt(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in HELP:
        if argv[1:2] and argv[1] in VERBS and argv[1] not in ("version", "dbt"):
            argv = [argv[1], "--help"]  # `help plan`: the verb's own
        else:
            print(top_level_help(), end="")
            return 0
    verb = argv.pop(0) if argv and argv[0] in VERBS else "run"
    if verb == "version":
        return cmd_version("--json" in argv)
    try:
        return _verb(verb, argv)
    finally:
        thaw()  # see startup.py


def _verb(verb: str, argv: list[str]) -> int:
    if verb == "dbt":
        return _guarded(lambda: cmd_dbt(argv[1:] if argv[:1] == ["--"] else argv))
    commands = {
        "run": cmd_run,
        "retry": cmd_run,
        "lint": cmd_lint,
        "cleanup": cmd_cleanup,
        "check": cmd_check,
        "plan": cmd_plan,
    }
    return _guarded(lambda: commands[verb](_parser(verb).parse_args(argv)))


def _guarded(command: Callable[[], int]) -> int:
    """Run a verb. A RunnerError raised before the run starts becomes one line; so does
    anything unexpected (the run itself reports its own failures: see stages.py)."""
    from entrypoint.errors import RunnerError, as_runner_error
    from entrypoint.logs import error_line

    try:
        return int(command())
    except RunnerError as exc:
        print(error_line(exc.message), file=sys.stderr)
        return int(exc.exit_code)
    except Exception as exc:
        error = as_runner_error(exc, "start-up")
        print(error_line(error.message), file=sys.stderr)
        return int(error.exit_code)


if __name__ == "__main__":
    sys.exit(main())
