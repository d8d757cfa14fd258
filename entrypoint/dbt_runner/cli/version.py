"""`dbt-runner version`: answered from package metadata, without importing dbt."""

from __future__ import annotations

import json


def version_verb(as_json: bool = False) -> int:
    from dbt_runner.versions import adapters, dbt_version, packages, runner_version

    installed = adapters()
    if as_json:
        info = {
            "dbt-runner": runner_version(),
            "dbt-core": dbt_version(),
            "adapters": installed,
            "packages": packages(),
        }
        print(json.dumps(info, indent=2))
        return 0
    print(f"dbt-runner {runner_version()}")
    print(f"dbt-core {dbt_version()}")
    for name, version in installed.items():
        print(f"dbt-{name} {version}")
    return 0
