"""Benchmark the image. Every figure is a ratio against a baseline built or run in the
same session (these machines are noisy):

1. Per variant and platform: the size above the OS image, the compressed size a
   registry stores (what Fargate pulls on every task start) and the time to pull it
   from a local registry (skopeo into an empty folder: a cold pull), against a naive
   single-stage `pip install` of the same
   locked packages (benchmarks/naive.Dockerfile; this machine's platform only: a
   naive build under emulation would measure QEMU). Goals: redshift <= 300 MB above
   the OS image, all <= 900 MB.
2. Rebuild after a one-line change to the entrypoint against a cold build (BuildKit's
   cache pruned first). Goal: ratio <= 0.1. The base image is not rebuilt; one layer
   of the runtime changes.
3. `docker run --rm IMAGE version` against
   `docker run --rm --entrypoint python IMAGE -c "import dbt.cli.main"`. Goal: <= 1.3.

Usage: python benchmarks/bench_image.py [--variants all redshift bigquery]
       [--platforms linux/amd64,linux/arm64] [--skip-naive] [--skip-rebuild]
Needs a BuildKit-capable client (DOCKER=/usr/bin/docker on Debian's docker.io), uv,
Debian's docker-registry and, behind a TLS proxy, BUILD_CA_BUNDLE; for arm64 the
offline base (make base-offline PLATFORM=linux/arm64). It prunes BuildKit's cache.
Writes build/bench/image.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.project import write_results  # noqa: E402 (after the path is set)

DOCKER = os.environ.get("DOCKER", "docker")
CA_BUNDLE = os.environ.get("BUILD_CA_BUNDLE", "")
BASE = os.environ.get("BASE_IMAGE", "debian:bookworm-slim")
UV = os.environ.get("UV", "uv")
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
IMAGE = "dbt-runner-bench"
MB = 1_000_000


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        sys.exit(f"docker {' '.join(args[:3])} failed:\n{result.stderr[-3000:]}")
    return result


def timed(command: list[str], cwd: Path, **env: str) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(command[:3])} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    return time.perf_counter() - start


def build(context: Path, variant: str, platform: str) -> float:
    """The project's own build (base when new, then runtime), in the context copy."""
    env = {"DOCKER": DOCKER, "IMAGE": IMAGE, "UV": UV, "BUILD_CA_BUNDLE": CA_BUNDLE}
    return timed([str(context / "docker/build/image.sh"), variant, platform], context, **env)


def build_naive(context: Path, variant: str) -> str:
    requirements = subprocess.run(
        [UV, "export", "--frozen", "--no-dev", "--extra", variant, "--no-emit-project", "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (context / "naive-requirements.txt").write_text(requirements)
    ignore = context / ".dockerignore"
    if "!naive-requirements.txt" not in ignore.read_text():
        ignore.write_text(ignore.read_text() + "!naive-requirements.txt\n")
    tag = f"{IMAGE}:naive-{variant}"
    command = [DOCKER, "build", "--quiet", "-f", "benchmarks/naive.Dockerfile", "-t", tag]
    command += ["--build-arg", f"BASE_IMAGE={BASE}", "."]
    if CA_BUNDLE:
        command[2:2] = ["--secret", f"id=ca_bundle,src={CA_BUNDLE}"]
    timed(command, context, DOCKER_BUILDKIT="1")
    return tag


def size(tag: str) -> int:
    return int(docker("image", "inspect", "-f", "{{.Size}}", tag).stdout)


def layers(tag: str) -> list[str]:
    found: list[str] = json.loads(
        docker("image", "inspect", "-f", "{{json .RootFS.Layers}}", tag).stdout
    )
    return found


def median_run(*args: str, repeats: int = 7) -> float:
    docker("run", "--rm", *args)  # first start pays for the page cache
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        docker("run", "--rm", *args)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def context_copy(dest: Path) -> Path:
    """The build context as git sees it, so the benchmark never touches the tree."""
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        if (ROOT / name).is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
    return dest


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (a local, fixed URL)
            return True
    except OSError:
        return False


@contextmanager
def local_registry() -> Iterator[str]:
    """Debian's docker-registry on a free port, no authentication, thrown away after."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="dbt-runner-bench-registry-"))
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(folder / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (folder / "config.yml").write_text(json.dumps(config))
    process = subprocess.Popen(
        ["docker-registry", "serve", str(folder / "config.yml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not answers(f"http://127.0.0.1:{port}/v2/"):
            if time.monotonic() > deadline:
                sys.exit("docker-registry did not start")
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def registry_figures(registry: str, tag: str) -> dict[str, float]:
    """Push `tag`, then: the compressed size the registry stores, and the time to pull
    it (skopeo fetching every blob into an empty folder: a cold pull, as on a Fargate
    task start, whatever this machine's image store already holds)."""
    remote = f"{registry}/bench:{tag.split(':', 1)[1]}"
    docker("tag", tag, remote)
    docker("push", "--quiet", remote)
    docker("rmi", remote)
    source = f"docker://{remote}"
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", source],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    compressed = sum(layer["size"] for layer in json.loads(raw)["layers"])
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-pull-") as folder:
        start = time.perf_counter()
        subprocess.run(
            ["skopeo", "copy", "--quiet", "--src-tls-verify=false", source, f"dir:{folder}"],
            check=True,
        )
        pull = time.perf_counter() - start
    return {"compressed_mb": round(compressed / MB), "pull_s": round(pull, 2)}


def local_tag(variant: str, platform: str) -> str:
    arch = platform.removeprefix("linux/")
    return f"{IMAGE}:{(ROOT / 'VERSION').read_text().strip()}-{variant}" + (
        "" if arch == HOST_ARCH else f"-{arch}"
    )


def os_image(platform: str) -> str:
    arch = platform.removeprefix("linux/")
    own = arch == HOST_ARCH or docker("image", "inspect", f"{BASE}-{arch}", check=False).returncode
    return BASE if own else f"{BASE}-{arch}"


def variant_figures(
    context: Path, registry: str, variant: str, platform: str, naive: bool
) -> dict[str, object]:
    build(context, variant, platform)
    tag = local_tag(variant, platform)
    ours = registry_figures(registry, tag)
    entry: dict[str, object] = {
        "above_base_mb": round((size(tag) - size(os_image(platform))) / MB),
        **ours,
    }
    if naive and platform == f"linux/{HOST_ARCH}":
        baseline = build_naive(context, variant)
        theirs = registry_figures(registry, baseline)
        entry |= {
            "naive_above_base_mb": round((size(baseline) - size(BASE)) / MB),
            "naive_compressed_mb": theirs["compressed_mb"],
            "naive_pull_s": theirs["pull_s"],
            "compressed_ratio": round(ours["compressed_mb"] / theirs["compressed_mb"], 3),
            "pull_ratio": round(ours["pull_s"] / theirs["pull_s"], 3),
        }
    return entry


def sizes(
    context: Path, variants: list[str], platforms: list[str], naive: bool
) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    with local_registry() as registry:
        for platform in platforms:
            for variant in variants:
                entry = variant_figures(context, registry, variant, platform, naive)
                results[f"{variant} {platform}"] = entry
                print(f"size {variant} {platform}:", entry, flush=True)
    return results


def rebuild(context: Path) -> dict[str, object]:
    """A cold build, then a one-line change to the entrypoint."""
    docker("builder", "prune", "-af")
    for tag in (local_tag("all", f"linux/{HOST_ARCH}"),):
        base = docker(
            "image",
            "inspect",
            "-f",
            '{{index .Config.Labels "io.dbt-runner.base"}}',
            tag,
            check=False,
        )
        if base.returncode == 0 and base.stdout.strip():
            docker("rmi", "-f", base.stdout.strip(), check=False)
    cold = build(context, "all", f"linux/{HOST_ARCH}")
    before = layers(local_tag("all", f"linux/{HOST_ARCH}"))
    cli = context / "entrypoint" / "cli.py"
    cli.write_text(cli.read_text() + "# a one-line change\n")
    again = build(context, "all", f"linux/{HOST_ARCH}")
    after = layers(local_tag("all", f"linux/{HOST_ARCH}"))
    changed = sum(1 for a, b in zip(before, after, strict=True) if a != b)
    if changed != 1:
        sys.exit(f"a one-line entrypoint change changed {changed} layers, not one")
    return {
        "cold_s": round(cold, 1),
        "rebuild_s": round(again, 1),
        "ratio": round(again / cold, 3),
        "layers_changed": f"1 of {len(after)}",
        "goal": 0.1,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["all", "redshift", "bigquery"])
    parser.add_argument("--platforms", default=f"linux/{HOST_ARCH}")
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--skip-rebuild", action="store_true", help="keep BuildKit's cache")
    args = parser.parse_args()
    platforms = [p for p in args.platforms.split(",") if p]
    results: dict[str, object] = {"base_image": BASE, "base_mb": round(size(BASE) / MB, 1)}
    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-image-") as tmp:
        context = context_copy(Path(tmp) / "context")
        if not args.skip_rebuild:
            results["rebuild"] = rebuild(context)
            print("rebuild:", results["rebuild"], flush=True)
        results["size"] = sizes(context, args.variants, platforms, not args.skip_naive)
        results["size_goals_mb"] = {"redshift": 300, "all": 900}

    image = local_tag("all", f"linux/{HOST_ARCH}")
    version = median_run(image, "version")
    import_dbt = median_run("--entrypoint", "python", image, "-c", "import dbt.cli.main")
    results["version"] = {
        "version_s": round(version, 3),
        "import_dbt_s": round(import_dbt, 3),
        "ratio": round(version / import_dbt, 3),
        "goal": 1.3,
    }
    write_results("image", results)


if __name__ == "__main__":
    main()
