"""Benchmark the image. Every figure is a ratio against a baseline built or run in the
same session (these machines are noisy):

1. Size added above the base image, per variant, against a naive single-stage
   `pip install` of the same packages (benchmarks/naive.Dockerfile).
   Goals: redshift <= 300 MB above base, all <= 900 MB above base.
2. Rebuild after a one-line change to the entrypoint against a cold build (BuildKit's
   cache pruned first). Goal: ratio <= 0.1. Only the runtime layer may change.
3. `docker run --rm IMAGE version` against
   `docker run --rm --entrypoint python IMAGE -c "import dbt.cli.main"`. Goal: <= 1.3.

Usage: python benchmarks/bench_image.py [--variants all redshift bigquery] [--skip-naive]
Needs a BuildKit-capable client (DOCKER=/usr/bin/docker on Debian's docker.io) and, behind
a TLS proxy, BUILD_CA_BUNDLE. It prunes BuildKit's cache. Writes build/bench/image.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKER = os.environ.get("DOCKER", "docker")
CA_BUNDLE = os.environ.get("BUILD_CA_BUNDLE", "")
BASE = os.environ.get("BASE_IMAGE", "debian:bookworm-slim")
MB = 1_000_000


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([DOCKER, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        sys.exit(f"docker {' '.join(args[:3])} failed:\n{result.stderr[-3000:]}")
    return result


def build(context: Path, tag: str, variant: str, dockerfile: str = "Dockerfile") -> float:
    args = ["build", "--quiet", "-f", str(context / dockerfile), "-t", tag]
    args += ["--build-arg", f"VARIANT={variant}", "--build-arg", f"BASE_IMAGE={BASE}"]
    if CA_BUNDLE:
        args += ["--secret", f"id=ca_bundle,src={CA_BUNDLE}"]
    start = time.perf_counter()
    result = subprocess.run(
        [DOCKER, *args, str(context)],
        env={**os.environ, "DOCKER_BUILDKIT": "1"},
        check=False,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"building {tag} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start


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
    """The build context as git tracks it, so the benchmark never touches the tree."""
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["all", "redshift", "bigquery"])
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args()
    base = size(BASE)
    results: dict[str, object] = {"base_image": BASE, "base_mb": round(base / MB, 1)}

    with tempfile.TemporaryDirectory(prefix="dbt-runner-bench-image-") as tmp:
        context = context_copy(Path(tmp) / "context")

        # 2. cold build, then a one-line change to the entrypoint.
        docker("builder", "prune", "-af")
        cold = build(context, "dbt-runner-bench:cold", "all")
        cli = context / "entrypoint" / "cli.py"
        cli.write_text(cli.read_text() + "# a one-line change\n")
        rebuild = build(context, "dbt-runner-bench:rebuilt", "all")
        before, after = layers("dbt-runner-bench:cold"), layers("dbt-runner-bench:rebuilt")
        shared = sum(1 for a, b in zip(before, after, strict=False) if a == b)
        results["rebuild"] = {
            "cold_s": round(cold, 1),
            "rebuild_s": round(rebuild, 1),
            "ratio": round(rebuild / cold, 3),
            "layers_reused": f"{shared} of {len(after)}",
            "goal": 0.1,
        }
        print("rebuild:", results["rebuild"], flush=True)
        if shared != len(after) - 1:
            sys.exit("a one-line entrypoint change rebuilt more than the runtime layer")

        # 1. size above base, ours against the naive build, per variant.
        sizes = {}
        for variant in args.variants:
            build(context, f"dbt-runner-bench:{variant}", variant)
            ours = (size(f"dbt-runner-bench:{variant}") - base) / MB
            entry: dict[str, object] = {"above_base_mb": round(ours)}
            if not args.skip_naive:
                build(
                    context,
                    f"dbt-runner-bench:naive-{variant}",
                    variant,
                    "benchmarks/naive.Dockerfile",
                )
                naive = (size(f"dbt-runner-bench:naive-{variant}") - base) / MB
                entry |= {"naive_above_base_mb": round(naive), "ratio": round(ours / naive, 3)}
            sizes[variant] = entry
            print(f"size {variant}:", entry, flush=True)
        results["size"] = sizes | {"goals_mb": {"redshift": 300, "all": 900}}

    # 3. start-up in the container.
    image = "dbt-runner-bench:rebuilt"
    version = median_run(image, "version")
    import_dbt = median_run("--entrypoint", "python", image, "-c", "import dbt.cli.main")
    results["version"] = {
        "version_s": round(version, 3),
        "import_dbt_s": round(import_dbt, 3),
        "ratio": round(version / import_dbt, 3),
        "goal": 1.3,
    }
    out = ROOT / "build" / "bench" / "image.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
