"""Redshift IAM: temporary database credentials for a provisioned cluster
(GetClusterCredentials) or a Serverless workgroup (GetCredentials)."""

from __future__ import annotations

from typing import Any

from dbt_runner.aws import error_code
from dbt_runner.errors import InfraError


def cluster_fields(
    client: Any,
    *,
    cluster_id: str,
    db_user: str,
    database: str | None,
    duration_s: int,
    auto_create: bool,
    need_endpoint: bool,
) -> dict[str, Any]:
    """Temporary credentials of a provisioned cluster (GetClusterCredentials).
    `client`: boto3's redshift client; `cluster_id`, `db_user`, `database`: the
    cluster's and the login's; `duration_s`: the credentials' lifetime; `auto_create`:
    let AWS create the user; `need_endpoint`: also describe the cluster for its host
    and port."""
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
        fields: dict[str, Any] = {
            "user": credentials["DbUser"],
            "password": credentials["DbPassword"],
        }
        if need_endpoint:
            endpoint = client.describe_clusters(ClusterIdentifier=cluster_id)["Clusters"][0][
                "Endpoint"
            ]
            fields |= {"host": endpoint["Address"], "port": int(endpoint["Port"])}
    except Exception as exc:
        raise InfraError(
            f"Redshift cluster '{cluster_id}': temporary credentials for '{db_user}' could not be "
            f"fetched ({error_code(exc)}): check DBT_RUNNER_CREDENTIALS__REDSHIFT_CLUSTER_ID and "
            "redshift:GetClusterCredentials"
        ) from exc
    return fields


def workgroup_fields(
    client: Any, *, workgroup: str, database: str | None, duration_s: int, need_endpoint: bool
) -> dict[str, Any]:
    """Temporary credentials of a Serverless workgroup (GetCredentials). `client`:
    boto3's redshift-serverless client; `workgroup` and `database`: Serverless's;
    `duration_s`: the credentials' lifetime; `need_endpoint`: also read the workgroup's
    host and port."""
    request: dict[str, Any] = {"workgroupName": workgroup, "durationSeconds": duration_s}
    if database:
        request["dbName"] = database
    try:
        credentials = client.get_credentials(**request)
        fields: dict[str, Any] = {
            "user": credentials["dbUser"],
            "password": credentials["dbPassword"],
        }
        if need_endpoint:
            endpoint = client.get_workgroup(workgroupName=workgroup)["workgroup"]["endpoint"]
            fields |= {"host": endpoint["address"], "port": int(endpoint["port"])}
    except Exception as exc:
        raise InfraError(
            f"Redshift Serverless workgroup '{workgroup}': temporary credentials could not be "
            f"fetched ({error_code(exc)}): check DBT_RUNNER_CREDENTIALS__REDSHIFT_WORKGROUP and "
            "redshift-serverless:GetCredentials"
        ) from exc
    return fields
