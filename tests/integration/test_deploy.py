"""The deployment definitions in docker/deploy/, each validated by the tool of its
platform: actionlint, botocore's RegisterTaskDefinition input shape, the Kubernetes
schemas (strict), and Airflow itself parsing the DAG."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import kubernetes_validate
import pytest
import yaml
from botocore.exceptions import ParamValidationError
from botocore.validate import validate_parameters

from tests.support import ROOT

DEPLOY = ROOT / "docker" / "deploy"
KUBERNETES_VERSION = "1.33.0"
SECRETISH = re.compile(r"AKIA[0-9A-Z]{16}|xox[abprs]-|hooks\.slack\.com/services/|-----BEGIN")


def actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent))
    assert found, "actionlint is a dev dependency: make venv"
    return found


def test_workflows_pass_actionlint(tmp_path: Path) -> None:
    workflows = sorted((DEPLOY / "github-actions").glob("*.yml"))
    assert [w.name for w in workflows] == [
        "dbt-daily.yml",
        "dbt-pr-cleanup.yml",
        "dbt-remote.yml",
        "dbt-slim.yml",
        "release.yml",
    ]
    result = subprocess.run(
        [actionlint(), *map(str, workflows)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # And actionlint does fail on a broken workflow.
    broken = tmp_path / "broken.yml"
    broken.write_text(
        (DEPLOY / "github-actions" / "dbt-slim.yml").read_text().replace("runs-on:", "runs_on:")
    )
    assert (
        subprocess.run([actionlint(), str(broken)], capture_output=True, check=False).returncode
        != 0
    )


def workflow(name: str) -> dict[Any, Any]:
    # YAML 1.1 reads a workflow's `on:` key as True.
    data: dict[Any, Any] = yaml.safe_load((DEPLOY / "github-actions" / name).read_text())
    return data


def steps_of(data: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in data["jobs"].values() for step in job["steps"]]


def test_workflows_do_what_the_runbook_says() -> None:
    release, slim, daily = (
        workflow("release.yml"),
        workflow("dbt-slim.yml"),
        workflow("dbt-daily.yml"),
    )
    triggers = {
        name: data[True] for name, data in (("release", release), ("slim", slim), ("daily", daily))
    }
    assert triggers["release"]["push"]["tags"] == ["[A-Z]*-[0-9]*"]
    assert set(triggers["slim"]) == {"pull_request", "push"} and triggers["slim"]["push"][
        "branches"
    ] == ["main"]
    assert triggers["daily"]["schedule"] and "workflow_dispatch" in triggers["daily"]
    for data in (release, slim, daily):
        assert data["permissions"]["id-token"] == "write"  # OIDC, no stored AWS keys
        runs = " ".join(step.get("run", "") for step in steps_of(data))
        assert not SECRETISH.search(json.dumps(data)) and "AWS_SECRET_ACCESS_KEY=" not in runs
    release_runs = [step.get("run", "") for step in steps_of(release)]
    assert release_runs.index("make image") < release_runs.index("make sanity")
    assert any("make release" in run for run in release_runs)
    # The dbt steps run this repository's action; what they set is what the runbook says.
    slim_step = action_step(slim)
    assert slim_step["with"]["job"] == "slim" and slim_step["with"]["state-url"].startswith("s3://")
    assert slim_step["with"]["pr"] == "${{ github.event.pull_request.number }}"
    assert slim["permissions"]["pull-requests"] == "write"  # the impact comment
    # Each pull request in its own namespace, its older run cancelled, its SQL linted.
    job_env = slim["jobs"]["slim"]["env"]
    assert "pull_request.number" in slim["concurrency"]["group"]
    assert "lint" in job_env["DBT_RUNNER_PHASES"]
    sarif = [s for s in steps_of(slim) if "upload-sarif" in s.get("uses", "")]
    assert sarif and sarif[0]["with"]["sarif_file"] == "${{ runner.temp }}/dbt-runner/lint.sarif"
    cleanup = workflow("dbt-pr-cleanup.yml")
    assert cleanup[True]["pull_request"]["types"] == ["closed"]
    cleanup_step = action_step(cleanup)
    assert cleanup_step["with"]["command"] == "cleanup" and "number" in cleanup_step["with"]["pr"]
    junit = [
        s for s in steps_of(slim) if s.get("uses", "").startswith("mikepenz/action-junit-report")
    ]
    assert (
        junit
        and junit[0]["with"]["report_paths"] == "${{ runner.temp }}/dbt-runner/junit.xml"
        and junit[0]["if"] == "always()"
    )


ACTION = ROOT / "action.yml"


def action_step(data: dict[Any, Any]) -> dict[str, Any]:
    [step] = [s for s in steps_of(data) if s.get("uses", "").startswith("dbt-runner/dbt-runner@")]
    return step


def test_the_action_is_valid_and_its_inputs_all_reach_the_runner(tmp_path: Path) -> None:
    checker = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert checker, "check-jsonschema is a dev dependency: make venv"
    schema = ["--builtin-schema", "vendor.github-actions"]
    result = subprocess.run(
        [checker, *schema, str(ACTION)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text().replace("using: composite", "using: composit"))
    refused = subprocess.run([checker, *schema, str(broken)], capture_output=True, check=False)
    assert refused.returncode != 0
    action = yaml.safe_load(ACTION.read_text())
    [step] = action["runs"]["steps"]
    step_script = ROOT / "docker" / "action" / "run.sh"
    syntax = subprocess.run(["bash", "-n", str(step_script)], capture_output=True, check=False)
    assert syntax.returncode == 0, syntax.stderr
    script = step_script.read_text()
    for name in action["inputs"]:
        variable = "INPUT_" + name.upper().replace("-", "_")
        assert step["env"][variable] == "${{ inputs." + name + " }}"
        assert "${" + variable in script, f"run.sh never reads {variable}"
    # Every example workflow gives the action only inputs it has, and the one it needs.
    for path in sorted((DEPLOY / "github-actions").glob("dbt-*.yml")):
        used = action_step(workflow(path.name))["with"]
        assert set(used) <= set(action["inputs"]), path.name
        assert "image" in used, path.name


def ecs_shape() -> Any:
    model = botocore.session.get_session().get_service_model("ecs")
    return model.operation_model("RegisterTaskDefinition").input_shape


def test_ecs_task_definition_is_a_valid_register_request() -> None:
    task = json.loads((DEPLOY / "ecs" / "task-definition.json").read_text())
    validate_parameters(task, ecs_shape())
    [container] = task["containerDefinitions"]
    assert container["user"] == "10001" and container["readonlyRootFilesystem"] is True
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    env = {item["name"]: item["value"] for item in container["environment"]}
    assert env["DBT_RUNNER_LOG_FORMAT"] == "json"  # JSON lines for CloudWatch
    assert env["DBT_RUNNER_ARTIFACTS_URL"].startswith("s3://")
    assert task["taskRoleArn"].endswith("role/dbt-runner-task")  # Glue and S3, at run time
    assert {m["containerPath"] for m in container["mountPoints"]} == {"/tmp", "/out"}
    assert not SECRETISH.search(json.dumps(container["environment"]))
    assert [s["name"] for s in container["secrets"]] == ["DBT_RUNNER_NOTIFY__SLACK_WEBHOOK_URL"]
    # The check is real: a misspelt field is refused.
    broken = copy.deepcopy(task)
    broken["containerDefinitions"][0]["readOnlyRootFilesystem"] = True
    with pytest.raises(ParamValidationError, match="readOnlyRootFilesystem"):
        validate_parameters(broken, ecs_shape())


def kubernetes(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "kubernetes" / name).read_text())
    return data


@pytest.mark.parametrize(
    "name", ["serviceaccount.yaml", "job.yaml", "cronjob.yaml", "networkpolicy.yaml"]
)
def test_kubernetes_manifests_match_the_schemas(name: str) -> None:
    kubernetes_validate.validate(kubernetes(name), KUBERNETES_VERSION, strict=True)


def test_kubernetes_pods_are_locked_down() -> None:
    account = kubernetes("serviceaccount.yaml")
    assert "eks.amazonaws.com/role-arn" in account["metadata"]["annotations"]
    job, cron = kubernetes("job.yaml"), kubernetes("cronjob.yaml")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    for pod in (
        job["spec"]["template"]["spec"],
        cron["spec"]["jobTemplate"]["spec"]["template"]["spec"],
    ):
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert (
            pod["securityContext"]["runAsNonRoot"] is True
            and pod["securityContext"]["runAsUser"] == 10001
        )
        [container] = pod["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert set(container["resources"]) == {"requests", "limits"}
        assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/out"}
    broken = copy.deepcopy(job)
    broken["spec"]["template"]["spec"]["containers"][0]["readonlyRootFilesystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
PARSE_DAGS = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1], safe_mode=False)
dags = {
    dag_id: {
        task.task_id: {
            "type": type(task).__name__,
            "wait": getattr(task, "wait_for_completion", None),
            "launch_type": getattr(task, "launch_type", None),
        }
        for task in dag.tasks
    }
    for dag_id, dag in bag.dags.items()
}
errors = {path.rsplit("/", 1)[-1]: text for path, text in bag.import_errors.items()}
print(json.dumps({"errors": errors, "dags": dags}))
"""


def parse_dags(folder: Path, tmp_path: Path) -> dict[str, Any]:
    assert AIRFLOW_PYTHON.exists(), "Airflow lives in its own venv: make airflow-venv"
    env = {
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), "-c", PARSE_DAGS, str(folder)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


def test_airflow_dag_parses_and_waits_for_the_task(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    shutil.copy(DEPLOY / "airflow" / "dbt_runner_dag.py", folder)
    parsed = parse_dags(folder, tmp_path)
    assert parsed["errors"] == {}
    assert parsed["dags"] == {
        "dbt_runner_daily": {
            "dbt_build": {"type": "EcsRunTaskOperator", "wait": True, "launch_type": "FARGATE"}
        }
    }
    # Airflow does refuse a DAG with a bad operator argument.
    source = (folder / "dbt_runner_dag.py").read_text()
    (folder / "dbt_runner_dag.py").write_text(source.replace("reattach=True,", "reatach=True,"))
    assert "reatach" in json.dumps(parse_dags(folder, tmp_path)["errors"])


# --- the ECS stack, and checkov on every deployment file --------------------------------

STACK = DEPLOY / "ecs" / "stack.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"


def cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "cfn-lint"
    return subprocess.run([str(binary), str(path)], capture_output=True, text=True, check=False)


def stack() -> dict[str, Any]:
    from cfnlint.decode import decode

    template, problems = decode(str(STACK))
    assert not problems and template is not None
    return dict(template)


def test_the_stack_passes_cfn_lint_and_a_broken_copy_does_not(tmp_path: Path) -> None:
    result = cfn_lint(STACK)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "stack.yaml"
    text = STACK.read_text()
    parameter = (
        "  AlarmTopicArn:\n    Type: String\n    Description: The SNS topic every alarm notifies\n"
    )
    assert parameter in text
    broken.write_text(text.replace(parameter, "", 1))
    failed = cfn_lint(broken)
    assert failed.returncode != 0 and "AlarmTopicArn" in failed.stdout


def test_the_task_role_grants_exactly_what_the_job_needs() -> None:
    resources = stack()["Resources"]
    [policy] = resources["TaskRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    actions = {
        action
        for s in statements
        for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    }
    assert actions == {
        "glue:GetConnection",
        "secretsmanager:GetSecretValue",
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
    }  # no cloudwatch:PutMetricData: the metrics come from the log lines (EMF)
    for statement in statements:
        targets = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        assert "*" not in json.dumps(targets).replace("/*", ""), statement["Sid"]
    container = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    assert (env["DBT_RUNNER_LOG_FORMAT"], env["DBT_RUNNER_METRICS"]) == ("json", "emf")
    assert resources["LogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_schedules_and_alarms_watch_the_run_metrics() -> None:
    from dbt_runner.outputs.metrics import RUN_METRICS

    template = stack()
    resources, parameters = template["Resources"], template["Parameters"]
    assert parameters["DailySchedule"]["Default"] == "cron(0 8 * * ? *)"
    assert resources["SlimJobSchedule"]["Condition"] == "HasSlimSchedule"
    assert resources["FreshJobSchedule"]["Condition"] == "HasFreshSchedule"
    alarms = {
        name: r["Properties"]
        for name, r in resources.items()
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    names = {name for name, _, _ in RUN_METRICS}
    for alarm in alarms.values():
        assert alarm["MetricName"] in names
        assert alarm["Namespace"] == {"Ref": "MetricsNamespace"}
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopicArn"}]
        assert {d["Name"] for d in alarm["Dimensions"]} == {"Project", "Env", "Job"}
    assert alarms["NoSuccessAlarm"]["TreatMissingData"] == "breaching"
    assert alarms["JobFailedAlarm"]["MetricName"] == "ExitCode"
    assert alarms["DurationAlarm"]["Threshold"] == {"Ref": "DurationThresholdSeconds"}


def checkov(target: Path, framework: str) -> dict[str, Any]:
    assert CHECKOV.exists(), "checkov lives in its own venv: make checkov-venv"
    flag = "-f" if target.is_file() else "-d"
    result = subprocess.run(
        [
            str(CHECKOV),
            flag,
            str(target),
            "--framework",
            framework,
            "-o",
            "json",
            "--quiet",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    report = json.loads(result.stdout)
    data: dict[str, Any] = report[0] if isinstance(report, list) else report
    return data


def workflows_folder(tmp_path: Path) -> Path:
    """checkov reads GitHub workflows where GitHub does: .github/workflows."""
    folder = tmp_path / "repository" / ".github" / "workflows"
    folder.mkdir(parents=True)
    for path in (DEPLOY / "github-actions").glob("*.yml"):
        shutil.copy(path, folder)
    return tmp_path / "repository"


def test_checkov_passes_every_deployment_file(tmp_path: Path) -> None:
    targets = [
        (STACK, "cloudformation"),
        (ROOT / "Dockerfile", "dockerfile"),
        (DEPLOY / "kubernetes", "kubernetes"),
        (workflows_folder(tmp_path), "github_actions"),
    ]
    for target, framework in targets:
        summary = checkov(target, framework)["summary"]
        assert summary["failed"] == 0 and summary["passed"] > 0, (framework, summary)


def test_checkov_fails_a_task_role_with_a_wildcard(tmp_path: Path) -> None:
    broken = tmp_path / "stack.yaml"
    scoped = (
        "Action: secretsmanager:GetSecretValue\n" + " " * 16 + "Resource: !Ref WarehouseSecretArn"
    )
    wildcard = 'Action: "*"\n' + " " * 16 + 'Resource: "*"'
    broken.write_text(STACK.read_text().replace(scoped, wildcard, 1))
    assert broken.read_text() != STACK.read_text()
    failed = checkov(broken, "cloudformation")
    assert failed["summary"]["failed"] > 0
