"""`python -m dbt_runner`: the same as the `dbt-runner` console script."""

from dbt_runner.cli import entry

entry()
