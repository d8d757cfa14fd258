"""Finishing's first step: whether the run becomes the state, and what its write into
its target touched.

A run the ledger would promote is checked against the warehouse first (the backstop):
every relation the state would name must exist, one listing per schema. The run's
write in the target's log is closed with the relations it built, the views the
warehouse dropped with them (PostgreSQL, Redshift) and any relation found missing:
the next slim job builds them all again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbt_runner.engine.relations import missing_relations
from dbt_runner.state import ledger
from dbt_runner.state.promotion import end_building, promote_state
from dbt_runner.state.touched import selector, touched

if TYPE_CHECKING:
    from dbt_runner.report.model import RunReport
    from dbt_runner.run.outcome import RunOutcome
    from dbt_runner.run.stages import Stages

LEASE_LOST = (
    "another run took this env's lease over while this one ran (it had stopped renewing "
    "it: DBT_RUNNER_LEASE_TTL_S): this run's state is not promoted"
)
SHOWN = 5  # relations named in a warning; the report lists them all


class StateStep:
    """Promotion (or not), and the run's write closed."""

    def __init__(self, outcome: RunOutcome, report: RunReport, stages: Stages) -> None:
        self.outcome, self.report, self.stages = outcome, report, stages
        self.manifest = outcome.manifest
        self.missing: list[str] = []  # unique ids of relations the warehouse lacks

    def everything(self) -> None:
        run = self.outcome
        touched_nodes, dropped = touched(run.written, self.manifest, self.report.adapter)
        self._say_dropped(dropped)
        if run.lease_lost:
            self.stages.warn(LEASE_LOST)
        promoted = False
        if run.workspace is not None and run.stop.exit_code is None:
            with self.stages.step("state"):
                blocker = self._blocker() or self._backstop()
                seeds = dict(run.unhashed_seeds)
                state = run.storages.state if run.storages is not None else None
                promoted = promote_state(
                    run.settings, run.workspace, self.report, blocker, seeds, state
                )
            if promoted and self.report.state is not None:
                self.report.state.promoted = True
        if run.claim is not None:
            missing = [s for s in (selector(self.manifest, uid) for uid in self.missing) if s]
            with self.stages.step("state"):
                end_building(run.claim, sorted({*touched_nodes, *missing}), None)

    def _blocker(self) -> str | None:
        """The ledger's word on this run becoming the state."""
        run = self.outcome
        refused = run.promotion.refused
        return ledger.promotion_blocker(run.settings, self.report, refused, run.lease_lost)

    def _backstop(self) -> str | None:
        """Why not, when the warehouse lacks a relation the state would name (said in
        the log, the report's warnings and its state), or could not be listed."""
        session, state, workspace = self.outcome.session, self.report.state, self.outcome.workspace
        if session is None or state is None or workspace is None:
            return None
        with self.stages.timed("backstop"), workspace.dbt_context():
            try:
                self.missing = missing_relations(session)
            except RuntimeError as exc:
                self.stages.warn(f"state not promoted: {exc}")
                return str(exc)
        if not self.missing:
            return None
        state.missing = self.missing
        why = (
            f"the warehouse lacks {len(self.missing)} relation(s) the state would name: "
            f"{shown(self.missing)}; the next slim job builds them"
        )
        self.stages.warn(f"state not promoted: {why}")
        return why

    def _say_dropped(self, dropped: list[str]) -> None:
        """Views the warehouse dropped with what this run rebuilt, and that it did not
        build again: said (the next slim job builds them)."""
        rebuilt = {n.unique_id for n in self.report.nodes if n.outcome in ("ok", "warn")}
        gone = [uid for uid in dropped if uid not in rebuilt]
        if not gone:
            return
        if self.report.state is not None:
            self.report.state.dropped = gone
        self.stages.warn(
            f"{len(gone)} view(s) were dropped with relations this run rebuilt and not built "
            f"again ({self.report.adapter} drops a relation's views with it): {shown(gone)}; "
            "the next slim job builds them"
        )


def shown(unique_ids: list[str]) -> str:
    more = len(unique_ids) - SHOWN
    return ", ".join(unique_ids[:SHOWN]) + (f" and {more} more" if more > 0 else "")
