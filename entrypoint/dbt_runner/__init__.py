"""dbt-runner."""
