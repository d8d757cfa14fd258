"""What a pull request does to the data: the report's `impact`, one entry per model the
pull-request run built, compared with production's relation of the same node."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field

ImpactStatus = Literal["compared", "new", "missing_in_production", "not_compared"]


class Column(BaseModel):
    name: str
    type: str


class TypeChange(BaseModel):
    name: str
    production: str
    pr: str


class KeyDiff(BaseModel):
    """Rows matched by the model's key in both relations."""

    key: list[str] = Field(description="The key's columns")
    only_in_production: int = Field(description="Keys production has and the pull request not")
    only_in_pr: int = Field(description="Keys the pull request has and production not")
    changed: int = Field(description="Keys in both whose other columns differ")
    changed_columns: dict[str, int] = Field(
        default_factory=dict, description="Per column: keys in both where its value differs"
    )
    examples: dict[str, list[str]] = Field(
        default_factory=dict,
        description="A few keys of each kind (only_in_production, only_in_pr, changed)",
    )


class ModelImpact(BaseModel):
    unique_id: str
    name: str
    status: ImpactStatus
    reason: str | None = Field(default=None, description="Why it was not compared")
    production: str | None = Field(default=None, description="Production's relation")
    pr: str | None = Field(default=None, description="The pull request's relation")
    modified: bool = Field(default=False, description="Its own code changed (else downstream)")
    added: list[Column] = Field(default_factory=list, description="Columns only in the PR")
    removed: list[Column] = Field(default_factory=list, description="Columns only in production")
    type_changed: list[TypeChange] = Field(default_factory=list)
    rows_production: int | None = None
    rows_pr: int | None = None
    by_key: KeyDiff | None = None
    no_key: str | None = Field(default=None, description="Why rows were not matched by key")
    seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rows_difference(self) -> int | None:
        if self.rows_pr is None or self.rows_production is None:
            return None
        return self.rows_pr - self.rows_production

    @computed_field(description="The difference as a percentage of production's rows")  # type: ignore[prop-decorator]
    @property
    def rows_percent(self) -> float | None:
        difference = self.rows_difference
        if difference is None or not self.rows_production:
            return None
        return round(100.0 * difference / self.rows_production, 2)

    def changes_data(self) -> bool:
        """Whether the comparison found any difference at all."""
        key = self.by_key
        keyed = key is not None and (key.only_in_production or key.only_in_pr or key.changed)
        return bool(
            self.added or self.removed or self.type_changed or self.rows_difference or keyed
        )

    def columns_text(self) -> str:
        """The columns added, removed and retyped, as words."""
        columns = [f"+{c.name} ({c.type})" for c in self.added]
        columns += [f"−{c.name} ({c.type})" for c in self.removed]
        columns += [f"{c.name}: {c.production} → {c.pr}" for c in self.type_changed]
        return ", ".join(columns)

    def rows_text(self) -> str:
        rows = f"{self.rows_production} → {self.rows_pr}"
        if self.rows_difference:
            rows += f" ({self.rows_difference:+d}, {self.rows_percent or 0:+.1f}%)"
        return rows

    def by_key_text(self) -> str:
        """The rows matched by key, as words, with a few example keys."""
        key = self.by_key
        if key is None:
            return self.no_key or "—"
        parts = []
        for count, kind, words in (
            (key.only_in_production, "only_in_production", "only in production"),
            (key.only_in_pr, "only_in_pr", "only in the PR"),
            (key.changed, "changed", "changed"),
        ):
            examples = ", ".join(key.examples.get(kind, []))
            if count:
                parts.append(f"{count} {words}" + (f" (e.g. {examples})" if examples else ""))
        if key.changed_columns:
            changed = ", ".join(f"{c} ({n})" for c, n in key.changed_columns.items())
            parts.append(f"columns changed: {changed}")
        return "; ".join(parts) or "no difference"

    def summary(self) -> str:
        """One phrase: what changed in this model."""
        if self.status != "compared":
            words = {"new": "new", "missing_in_production": "not in production"}
            said = words.get(self.status, f"not compared ({self.reason})")
            rows = f", {self.rows_pr} rows" if self.rows_pr is not None else ""
            return f"{said}{rows}"
        parts = []
        for count, what in (
            (len(self.added), "column(s) added"),
            (len(self.removed), "column(s) removed"),
            (len(self.type_changed), "type(s) changed"),
        ):
            if count:
                parts.append(f"{count} {what}")
        if self.rows_difference:
            parts.append(f"{self.rows_difference:+d} rows ({self.rows_percent or 0:+.1f}%)")
        if self.by_key is not None and self.by_key.changed:
            parts.append(f"{self.by_key.changed} row(s) changed")
        return ", ".join(parts) or "no change"


class ImpactInfo(BaseModel):
    """A pull-request run's models against production (DBT_RUNNER_PR_IMPACT)."""

    models: list[ModelImpact] = Field(default_factory=list)
    queries: int = Field(default=0, description="Warehouse queries the comparison issued")
    seconds: float = 0.0
    gate: str | None = Field(
        default=None, description="Why the impact gate failed the run (MAX_ROW_LOSS_PCT)"
    )

    def count(self, status: ImpactStatus) -> int:
        return sum(1 for model in self.models if model.status == status)

    def changed(self) -> list[ModelImpact]:
        return [m for m in self.models if m.status != "compared" or m.changes_data()]

    def headline(self) -> str:
        """One line: how many models were compared and what the biggest changes are."""
        changed = [m for m in self.models if m.status == "compared" and m.changes_data()]
        parts = [f"{self.count('compared')} model(s) compared"]
        parts.append(f"{len(changed)} changed" if changed else "no data changed")
        others = (
            (self.count("new"), "new"),
            (self.count("missing_in_production"), "not in production"),
            (self.count("not_compared"), "not compared"),
        )
        parts += [f"{count} {word}" for count, word in others if count]
        biggest = sorted(changed, key=lambda m: -abs(m.rows_difference or 0))[:2]
        said = "; ".join(f"{m.name}: {m.summary()}" for m in biggest)
        return ", ".join(parts) + (f" ({said})" if said else "")
