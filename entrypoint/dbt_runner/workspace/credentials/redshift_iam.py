"""Redshift IAM: the endpoint of a provisioned cluster or a Serverless workgroup and,
for a project's own profiles.yml only, a temporary password (GetClusterCredentials /
GetCredentials).

A rendered profile uses dbt-redshift's native IAM method instead (`iam_profile_fields`):
the driver asks for fresh credentials whenever a connection opens after the last ones
expired, and dbt opens a connection per node, so a fetched password would stop working
for every node that starts after its lifetime (15 minutes by default)."""

from __future__ import annotations

from typing import Any

from dbt_runner.aws import error_code
from dbt_runner.errors import InfraError


def iam_profile_fields(
    *, cluster_id: str | None, workgroup: str | None, db_user: str | None, auto_create: bool
) -> dict[str, Any]:
    """dbt-redshift's native IAM profile fields. `cluster_id` with `db_user` and
    `auto_create`: a provisioned cluster (GetClusterCredentials as that user);
    `workgroup`: Serverless (GetCredentials as the task's own role)."""
    if cluster_id:
        return {
            "method": "iam",
            "cluster_id": cluster_id,
            "user": db_user,
            "autocreate": auto_create,
        }
    return {"method": "iam_role", "is_serverless": True, "serverless_work_group": workgroup}


def cluster_endpoint(client: Any, cluster_id: str) -> dict[str, Any]:
    """The cluster's host and port. `client`: boto3's redshift client."""
    try:
        endpoint = client.describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0]["Endpoint"]
    except Exception as exc:
        raise InfraError(
            f"Redshift cluster '{cluster_id}' could not be described ({error_code(exc)}): check "
            "DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID and redshift:DescribeClusters, or set "
            "DBT_RUNNER_WAREHOUSE__HOST"
        ) from exc
    return {"host": endpoint["Address"], "port": int(endpoint["Port"])}


def workgroup_endpoint(client: Any, workgroup: str) -> dict[str, Any]:
    """The workgroup's host and port. `client`: boto3's redshift-serverless client."""
    try:
        endpoint = client.get_workgroup(workgroupName=workgroup)["workgroup"]["endpoint"]
    except Exception as exc:
        raise InfraError(
            f"Redshift Serverless workgroup '{workgroup}' could not be read ({error_code(exc)}): "
            "check DBT_RUNNER_CREDENTIALS__REDSHIFT_WORKGROUP and redshift-serverless:GetWorkgroup"
            ", or set DBT_RUNNER_WAREHOUSE__HOST"
        ) from exc
    return {"host": endpoint["address"], "port": int(endpoint["port"])}


def cluster_password(
    client: Any,
    *,
    cluster_id: str,
    db_user: str,
    database: str | None,
    duration_s: int,
    auto_create: bool,
) -> dict[str, Any]:
    """Temporary credentials of a provisioned cluster (GetClusterCredentials).
    `client`: boto3's redshift client; `cluster_id`, `db_user`, `database`: the
    cluster's and the login's; `duration_s`: the credentials' lifetime; `auto_create`:
    let AWS create the user."""
    request: dict[str, Any] = {
        "DbUser": db_user,
        "ClusterIdentifier": cluster_id,
        "DurationSeconds": duration_s,
        "AutoCreate": auto_create,
    }
    if database:
        request["DbName"] = database
    try:
        credentials = client.get_cluster_credentials(**request)
    except Exception as exc:
        raise InfraError(
            f"Redshift cluster '{cluster_id}': temporary credentials for '{db_user}' could not be "
            f"fetched ({error_code(exc)}): check DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID and "
            "redshift:GetClusterCredentials"
        ) from exc
    return {"user": credentials["DbUser"], "password": credentials["DbPassword"]}


def workgroup_password(
    client: Any, *, workgroup: str, database: str | None, duration_s: int
) -> dict[str, Any]:
    """Temporary credentials of a Serverless workgroup (GetCredentials). `client`:
    boto3's redshift-serverless client; `workgroup` and `database`: Serverless's;
    `duration_s`: the credentials' lifetime."""
    request: dict[str, Any] = {"workgroupName": workgroup, "durationSeconds": duration_s}
    if database:
        request["dbName"] = database
    try:
        credentials = client.get_credentials(**request)
    except Exception as exc:
        raise InfraError(
            f"Redshift Serverless workgroup '{workgroup}': temporary credentials could not be "
            f"fetched ({error_code(exc)}): check DBT_RUNNER_CREDENTIALS__REDSHIFT_WORKGROUP and "
            "redshift-serverless:GetCredentials"
        ) from exc
    return {"user": credentials["dbUser"], "password": credentials["dbPassword"]}
