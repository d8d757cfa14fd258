"""dbt's import without the garbage collector's overhead.

Importing dbt builds thousands of classes (mashumaro generates their (de)serialisers)
and objects that live as long as the process. The cyclic collector would walk all of
them during the import and again on each full collection during the parse and the
build: on the 500-model benchmark project that is about a sixth of a slim job
(`benchmarks/bench_slim.py`). gc.freeze() moves what exists into a permanent
generation the collector skips; collection itself stays on.

Nothing is thawed before exit: the process ends without the interpreter's teardown
(process.py), so the final collection that would walk the frozen objects (and DuckDB's
bindings' "nanobind: leaked ..." check, which broke JSON log mode) never runs
(tests/integration/test_cli.py::test_dbt_passthrough_uses_the_rendered_profile).
"""

from __future__ import annotations

import gc
import os
import sys

from dbt_runner.engine.previous import read_state_once

# dbt's own faster ordering of a build after its tests ("Fast test edges" in dbt's docs):
# the same order, far fewer edges. dbt's default adds an edge from every upstream test
# to every downstream node, before the first node runs, in every `dbt build`, slim ones
# included: on the benchmarks' generated project, 0.1 M edges and 1.4 s at 2,000 models,
# 1.0 M edges and 25 s at 5,000 (docs/benchmarks.md). DBT_USE_FAST_TEST_EDGES=false in
# the job's environment gives dbt's default back.
FAST_TEST_EDGES = "DBT_USE_FAST_TEST_EDGES"


def dbt_defaults() -> None:
    """The runner's defaults for dbt's own settings, where the job did not set them."""
    os.environ.setdefault(FAST_TEST_EDGES, "true")


def import_dbt() -> None:
    """Import dbt with collection paused, then freeze what the import created."""
    dbt_defaults()
    if "dbt.cli.main" in sys.modules:
        read_state_once()
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import dbt.cli.main  # noqa: F401 (imported for its side effect: dbt is loaded)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()
    read_state_once()


def settle() -> None:
    """Freeze what lives on from here: after the parse, its manifest (the full collections
    of the build then walk only what the build makes: at 2,000 models, 60 of them took
    0.14 s each); after dbt, what the build left (finishing renders 20,000 nodes' report
    without walking them). The young generations are collected first, so no fresh
    garbage is frozen with it."""
    gc.collect(1)
    gc.freeze()
