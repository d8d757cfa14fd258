"""`dbt-runner remote [FLAGS]`: the job `run` would run, as one ECS task where the
warehouse is (DBT_RUNNER_REMOTE__*); its log streamed here, its reports brought back,
its exit code this command's."""

from __future__ import annotations


def remote_verb(args: list[str]) -> int:
    from dbt_runner import logs
    from dbt_runner.cli.args import parser
    from dbt_runner.config.remote import load_remote
    from dbt_runner.remote.job import remote

    flags = parser("remote").parse_args(args)  # run's flags, checked before anything starts
    caller = load_remote()
    logs.setup("text", {"run_id": caller.run_id})
    return remote(caller, args, flags)
