"""`dbt-runner check`: the settings validated and printed (secrets redacted), with the
project and profile `run` would use; nothing is written or fetched."""

from __future__ import annotations

import argparse
import json

from dbt_runner.cli.args import settings_from


def check_verb(args: argparse.Namespace) -> int:
    from dbt_runner.workspace.prepare import describe_workspace

    settings = settings_from(args)
    workspace = describe_workspace(settings)
    project, profile = workspace.project, workspace.profile
    rendered = f"rendered for {settings.warehouse.type.value} into {profile.dir}"
    effective = {
        "settings": settings.redacted(),
        "project": {"name": project.name, "profile": project.profile},
        "runs_in": str(project.dir),
        "profile": rendered if profile.rendered else str(profile.dir / "profiles.yml"),
        "phases": [phase.value for phase in settings.job_phases],
    }
    if not args.as_json:
        summary = f"project {project.name}, env {settings.env}, job {settings.job.value}"
        print(f"configuration OK: {summary}")
    print(json.dumps(effective, indent=2, default=str))
    return 0
