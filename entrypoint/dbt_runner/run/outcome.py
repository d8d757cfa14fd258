"""What a run built and found, handed to finishing once dbt is done.

Finishing (finish.py, state_step.py) reads this, never the run itself: what the run
knows is fixed from here on, and each step of finishing returns what it found for the
report.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dbt_runner.jobs.base import Promotion

if TYPE_CHECKING:
    from dbt_runner.config import Settings
    from dbt_runner.engine.session import DbtSession
    from dbt_runner.state.promotion import Claim
    from dbt_runner.state.seeds import UnhashedSeed
    from dbt_runner.storage import Storages
    from dbt_runner.workspace.prepare import Workspace


@dataclass(frozen=True)
class Stop:
    """A stop of the run (a signal or the timeout), as finishing needs it."""

    exit_code: int | None = None  # None: the run was not stopped
    # Seconds notifying may still take after a stop, when asked (None: no bound).
    budget: Callable[[], float | None] = lambda: None


@dataclass(frozen=True)
class RunOutcome:
    """What the run built and found."""

    settings: Settings
    promotion: Promotion  # whether its job may become the state
    workspace: Workspace | None = None  # None: it stopped before the workspace
    session: DbtSession | None = None  # dbt, when the run reached it
    written: tuple[str, ...] = ()  # the relations it built (or began to): unique ids
    unhashed_seeds: Mapping[str, UnhashedSeed] = field(default_factory=dict)
    claim: Claim | None = None  # its write into its target's log, still open
    publishable: bool = True  # False when the artifacts storage refused a write
    marked: bool = False  # its start is in last_run.json: its end goes there too
    lease_lost: bool = False  # another run took its env's lease over
    stop: Stop = field(default_factory=Stop)
    storages: Storages | None = None  # the run's, opened once (None: open them here)

    @property
    def manifest(self) -> object | None:
        return self.session.manifest if self.session is not None else None

    def notify_budget(self) -> float | None:
        """Seconds notifying may take in all after a stop (None: no stop, no bound)."""
        return self.stop.budget()
