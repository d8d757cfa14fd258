"""dbt's import and the process's exit, without the garbage collector's overhead.

Importing dbt builds thousands of classes (mashumaro generates their (de)serialisers)
and objects that live as long as the process. The cyclic collector would walk all of
them on each full collection during the parse and the build, and once more at exit,
by then with the whole manifest: on the 500-model benchmark project that is about a
fifth of a slim job (`benchmarks/bench_slim.py`). gc.freeze() moves what exists into a
permanent generation the collector skips; collection itself stays on.
"""

from __future__ import annotations

import gc
import sys


def import_dbt() -> None:
    """Import dbt with collection paused, then freeze what the import created."""
    if "dbt.cli.main" in sys.modules:
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        import dbt.cli.main  # noqa: F401 (imported for its side effect: dbt is loaded)
    finally:
        if was_enabled:
            gc.enable()
    gc.freeze()


def skip_final_collection() -> None:
    """Called as the process ends: the interpreter's last collection would walk every
    object still alive (the manifest and its nodes) only to free memory the exit
    frees anyway. atexit handlers and stream flushes still run."""
    gc.freeze()
