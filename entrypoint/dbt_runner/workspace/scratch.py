"""The run's scratch folder, removed at the end without making the exit wait.

dbt leaves a compiled file or two per node in the run's target folder: at 10,000 models
removing them took longer than everything else the runner does after dbt. The secrets
(the rendered profile, fetched key files) go first, here; the rest is moved out of
`runs/` at once and removed by a detached `rm -rf` that outlives the process (in a
container, the container's end takes it anyway).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

SENSITIVE = ("profiles", "secrets")  # removed before the process ends, always
REMOVING = ".removing"  # beside runs/: what a detached rm is still removing


def remove_run_dir(run_dir: Path) -> None:
    for name in SENSITIVE:
        shutil.rmtree(run_dir / name, ignore_errors=True)
    if not run_dir.exists():
        return
    aside = run_dir.parent.parent / REMOVING / run_dir.name
    try:
        aside.parent.mkdir(exist_ok=True)
        run_dir.rename(aside)
        subprocess.Popen(
            ["rm", "-rf", "--", str(aside)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not in the job's process group: a stop does not reach it
        )
    except OSError:  # no rename across mounts, no rm: removed here, as before
        shutil.rmtree(aside, ignore_errors=True)
        shutil.rmtree(run_dir, ignore_errors=True)
