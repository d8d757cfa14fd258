"""`python -m tests.record_dbt LOG ARGS...`: `dbt-runner ARGS` in a process of its own,
each command dbt's runner receives appended to LOG first (a JSON line: its argv), as
dbt itself is handed it (tests/integration/test_plan.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dbt.cli.main import dbtRunner


def main() -> None:
    log = Path(sys.argv[1])
    original = dbtRunner.invoke

    def invoke(self: dbtRunner, args: list[str], **kwargs: Any) -> Any:
        with log.open("a") as handle:
            handle.write(json.dumps(list(args)) + "\n")
        return original(self, args, **kwargs)

    dbtRunner.invoke = invoke  # type: ignore[method-assign]
    sys.argv = ["dbt-runner", *sys.argv[2:]]
    from dbt_runner.cli import entry

    entry()


if __name__ == "__main__":
    main()
