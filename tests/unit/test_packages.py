"""When a run may skip `dbt deps`: the packages installed in this folder are the ones
the package files pin, and every one of them is still there."""

from __future__ import annotations

from pathlib import Path

from dbt_runner.workspace.packages import remember_install, unchanged_since_install

LOCK = "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\nsha1_hash: abc\n"


def project(tmp_path: Path, lock: str = LOCK) -> Path:
    (tmp_path / "dbt_project.yml").write_text("name: p\n")
    (tmp_path / "packages.yml").write_text("packages:\n  - package: dbt-labs/dbt_utils\n")
    (tmp_path / "package-lock.yml").write_text(lock)
    (tmp_path / "dbt_packages" / "dbt_utils").mkdir(parents=True)
    return tmp_path


def test_an_install_holds_until_the_package_files_change(tmp_path: Path) -> None:
    folder = project(tmp_path)
    assert not unchanged_since_install(folder)  # never installed by a run
    remember_install(folder)
    assert unchanged_since_install(folder)
    (folder / "package-lock.yml").write_text(LOCK.replace("1.3.0", "1.3.1"))
    assert not unchanged_since_install(folder)


def test_a_package_that_went_missing_is_installed_again(tmp_path: Path) -> None:
    folder = project(tmp_path)
    remember_install(folder)
    (folder / "dbt_packages" / "dbt_utils").rmdir()
    assert not unchanged_since_install(folder)


def test_a_git_branch_is_always_installed_again_a_commit_is_not(tmp_path: Path) -> None:
    branch = "packages:\n  - git: https://example.com/p.git\n    revision: main\n"
    folder = project(tmp_path, branch)
    remember_install(folder)
    assert not unchanged_since_install(folder)  # main may have moved
    commit = branch.replace("main", "0123456789abcdef0123456789abcdef01234567")
    (folder / "package-lock.yml").write_text(commit)
    remember_install(folder)
    assert unchanged_since_install(folder)


def test_another_install_path_and_a_templated_one(tmp_path: Path) -> None:
    folder = project(tmp_path)
    (folder / "dbt_project.yml").write_text("name: p\npackages-install-path: vendor\n")
    (folder / "dbt_packages").rename(folder / "vendor")
    remember_install(folder)
    assert unchanged_since_install(folder) and (folder / "vendor").is_dir()
    (folder / "dbt_project.yml").write_text(
        "name: p\npackages-install-path: \"{{ env_var('X') }}\"\n"
    )
    assert not unchanged_since_install(folder)  # only dbt can say where that is
