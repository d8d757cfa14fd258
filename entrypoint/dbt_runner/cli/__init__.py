"""Command line: `dbt-runner [VERB] [FLAGS]` (verbs.py lists them; `dbt -- ARGS` passes
through), one module per verb.

Flags override DBT_RUNNER_* variables, so a workflow can change `--select` without a
new image; each flag is declared on its settings field (config/). Heavy imports
(pydantic, dbt) wait until a verb needs them: `version` answers from package metadata.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from dbt_runner.cli.verbs import HELP, VERBS, top_level_help


def entry() -> None:
    """The `dbt-runner` command and `python -m dbt_runner`: the verb, then the process
    ends at once (process.py)."""
    from dbt_runner.process import end

    end(main())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] and args[0] in HELP:
        if args[1:2] and args[1] in VERBS and args[1] not in ("version", "dbt"):
            args = [args[1], "--help"]  # `help plan`: the verb's own
        else:
            print(top_level_help(), end="")
            return 0
    verb = args.pop(0) if args and args[0] in VERBS else "run"
    if verb == "version":
        from dbt_runner.cli.version import version_verb

        return version_verb("--json" in args)
    return _guarded(lambda: _dispatch(verb, args))


def _dispatch(verb: str, args: list[str]) -> int:
    """The verb's module, imported only now (start-up stays fast)."""
    if verb == "dbt":
        from dbt_runner.cli.dbt import dbt_verb

        return dbt_verb(args[1:] if args[:1] == ["--"] else args)
    if verb == "remote":
        from dbt_runner.cli.remote import remote_verb

        return remote_verb(args)
    from dbt_runner.cli.args import parser

    parsed = parser(verb).parse_args(args)
    if verb == "check":
        from dbt_runner.cli.check import check_verb

        return check_verb(parsed)
    if verb == "plan":
        from dbt_runner.cli.plan import plan_verb

        return plan_verb(parsed)
    if verb == "prepare":
        from dbt_runner.cli.prepare import prepare_verb

        return prepare_verb(parsed)
    from dbt_runner.cli import run

    verbs = {
        "run": run.run_verb,
        "retry": run.retry_verb,
        "lint": run.lint_verb,
        "cleanup": run.cleanup_verb,
    }
    return verbs[verb](parsed)


def _guarded(command: Callable[[], int]) -> int:
    """Run a verb. A RunnerError raised before the run starts becomes one line; so does
    anything unexpected (the run itself reports its own failures: see run/stages.py)."""
    from dbt_runner.errors import RunnerError, as_runner_error
    from dbt_runner.logs import error_line

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
