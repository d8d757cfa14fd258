"""Run the dbt-runner ECS task from Airflow; the Airflow task fails when the job fails.

EcsRunTaskOperator waits for the task to stop and raises when the container's exit
code is not 0 (dbt-runner's exit codes: 1 failed nodes, 2 dbt error, 3 configuration,
4 infrastructure), so downstream tasks never run on a broken build. The selection,
job and environment come from the DAG's params: change them per run, no new image.

Fill in: the cluster, subnets and security groups, the task definition
(docker/deploy/ecs/task-definition.json), and the awslogs group for the log link.
Needs apache-airflow 3 and apache-airflow-providers-amazon.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.amazon.aws.operators.ecs import EcsRunTaskOperator
from airflow.sdk import DAG, Param

CLUSTER = "data-jobs"
TASK_DEFINITION = "dbt-runner-prod"
CONTAINER = "dbt-runner"
SUBNETS = ["subnet-0123456789abcdef0"]
SECURITY_GROUPS = ["sg-0123456789abcdef0"]

with DAG(
    dag_id="dbt_runner_daily",
    description="dbt build in production through the dbt-runner image on ECS Fargate",
    schedule="0 5 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "execution_timeout": timedelta(hours=3)},
    params={
        # fresh: only what has new data or changed code (docs/jobs.md, Source-aware builds);
        # trigger it hourly between the daily full builds, e.g. with a second schedule.
        "job": Param("full", enum=["full", "slim", "fresh"]),
        "select": Param("", type="string", description="dbt selection; empty: everything"),
        "full_refresh": Param(False, type="boolean"),
    },
    tags=["dbt"],
) as dag:
    EcsRunTaskOperator(
        task_id="dbt_build",
        cluster=CLUSTER,
        task_definition=TASK_DEFINITION,
        launch_type="FARGATE",
        overrides={
            "containerOverrides": [
                {
                    "name": CONTAINER,
                    "command": ["run"],
                    "environment": [
                        {"name": "DBT_RUNNER_JOB", "value": "{{ params.job }}"},
                        {"name": "DBT_RUNNER_SELECT", "value": "{{ params.select }}"},
                        {
                            "name": "DBT_RUNNER_FULL_REFRESH",
                            "value": "{{ 'true' if params.full_refresh else 'false' }}",
                        },
                        # A run id dbt-runner accepts, unique per DAG run and try.
                        {
                            "name": "DBT_RUNNER_RUN_ID",
                            "value": "airflow-{{ ts_nodash }}-{{ ti.try_number }}",
                        },
                    ],
                }
            ]
        },
        network_configuration={
            "awsvpcConfiguration": {
                "subnets": SUBNETS,
                "securityGroups": SECURITY_GROUPS,
                "assignPublicIp": "DISABLED",
            }
        },
        awslogs_group="/ecs/dbt-runner",
        awslogs_region="eu-west-1",
        awslogs_stream_prefix=f"dbt/{CONTAINER}",
        wait_for_completion=True,
        reattach=True,  # an Airflow restart picks the running task up again
    )
