"""The verbs' flags, declared on the settings fields they set (config/), and the
settings a verb runs with: flags over the environment."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, NoReturn

from dbt_runner.cli.verbs import VERBS
from dbt_runner.errors import ConfigError

if TYPE_CHECKING:
    from dbt_runner.config import Settings


class _Parser(argparse.ArgumentParser):
    """Bad flags are a configuration error: exit 3, one line (argparse would exit 2)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}; see --help")


def flags() -> dict[str, str]:
    """Every flag and the settings field it sets, from the fields' declarations."""
    from dbt_runner.config import Settings

    found = {}
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("flag"):
            found[str(extra["flag"])] = name
    return found


def parser(verb: str) -> argparse.ArgumentParser:
    from dbt_runner.config import Settings

    what = VERBS[verb]
    made = _Parser(
        prog=f"dbt-runner {verb}",
        description=f"{what[0].upper()}{what[1:]}. Settings come from DBT_RUNNER_* variables; "
        "these flags override them.",
    )
    for flag, name in flags().items():
        field = Settings.model_fields[name]
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        names = [flag] + ([str(extra["short"])] if extra.get("short") else [])
        options: dict[str, Any] = {"dest": name, "default": None, "help": field.description}
        if field.annotation is bool:
            options["action"] = argparse.BooleanOptionalAction
        made.add_argument(*names, **options)
    if verb in ("plan", "check"):
        made.add_argument("--json", action="store_true", dest="as_json", help="print JSON")
    if verb in ("retry", "plan"):
        made.add_argument(
            "--from-run", dest="retry_of", metavar="RUN_ID", help="default: the last run"
        )
    if verb == "plan":
        made.add_argument(
            "--retry", action="store_true", help="the steps `dbt-runner retry` would make"
        )
        made.add_argument(
            "--nodes",
            action="store_true",
            help="each node step's nodes and Dagster asset keys (parses the project)",
        )
    return made


def settings_from(args: argparse.Namespace, **fixed: str) -> Settings:
    """The settings, flags over the environment; `fixed` values are the verb's own."""
    from dbt_runner.config import load_settings

    by_field = {name: flag for flag, name in flags().items()}
    overrides = {name: getattr(args, name) for name in by_field if getattr(args, name) is not None}
    # Name the flag in errors only for values that came from a flag.
    return load_settings(overrides | fixed, {name: by_field[name] for name in overrides})


def run_settings(args: argparse.Namespace, **fixed: str) -> Settings:
    """Settings for a verb that runs: a bad one still tells the channels; logs set up."""
    from dbt_runner import logs

    try:
        settings = settings_from(args, **fixed)
    except ConfigError as exc:
        from dbt_runner.run.unconfigured import finish_unconfigured

        finish_unconfigured(exc.message)
        raise
    logs.setup(
        settings.log_format.value,
        {"run_id": settings.run_id, "env": settings.env, "job": settings.job.value},
    )
    return settings
