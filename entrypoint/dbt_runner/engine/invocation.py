"""The arguments every dbt command of a run shares."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class DbtInvocation:
    """The arguments every dbt command of a run shares."""

    project_dir: Path
    profiles_dir: Path
    target: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)

    def common_args(self, target: bool = True) -> list[str]:
        args = ["--project-dir", str(self.project_dir), "--profiles-dir", str(self.profiles_dir)]
        if self.target and target:
            args += ["--target", self.target]
        if self.vars:
            args += ["--vars", json.dumps(self.vars, sort_keys=True)]
        return args
