"""The run's scratch folder at the end of a run: the secrets removed before the process
ends, the rest out of `runs/` at once and removed without the process waiting."""

from __future__ import annotations

from pathlib import Path

from dbt_runner.workspace.scratch import REMOVING, remove_run_dir
from tests.support import wait_until


def run_dir(work: Path) -> Path:
    folder = work / "runs" / "20261202T000000Z-abcdef"
    for name in ("profiles", "secrets", "target/compiled/demo/models"):
        (folder / name).mkdir(parents=True)
    (folder / "profiles" / "profiles.yml").write_text("password: s3cret\n")
    (folder / "secrets" / "key.p8").write_text("-----BEGIN PRIVATE KEY-----\n")
    for index in range(200):
        (folder / "target/compiled/demo/models" / f"m_{index}.sql").write_text("select 1\n")
    return folder


def test_secrets_go_first_and_the_rest_leaves_runs_at_once(tmp_path: Path) -> None:
    folder = run_dir(tmp_path)
    remove_run_dir(folder)
    assert not folder.exists() and list((tmp_path / "runs").iterdir()) == []
    aside = tmp_path / REMOVING / folder.name
    assert not (aside / "profiles").exists() and not (aside / "secrets").exists()
    wait_until(lambda: not aside.exists(), 30, "the detached removal")


def test_a_folder_already_gone_is_nothing_to_do(tmp_path: Path) -> None:
    remove_run_dir(tmp_path / "runs" / "never-made")
    assert not (tmp_path / REMOVING).exists()
