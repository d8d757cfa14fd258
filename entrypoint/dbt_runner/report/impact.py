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


class ContentDiff(BaseModel):
    """Rows compared by content (a model without a key): each row's digest of every
    column both relations share, counted on each side."""

    columns: list[str] = Field(description="The columns compared")
    only_in_production: int = Field(description="Rows production has more of than the PR")
    only_in_pr: int = Field(description="Rows the pull request has more of than production")


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
    by_content: ContentDiff | None = Field(
        default=None, description="Without a key: rows compared by their content"
    )
    no_key: str | None = Field(default=None, description="Why rows were not matched by key")
    compared_as: dict[str, str] = Field(
        default_factory=dict,
        description="Columns whose type changed: the type both sides were cast to before "
        "comparing their values, or `text` where the two types have none in common",
    )
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
        key, content = self.by_key, self.by_content
        keyed = key is not None and (key.only_in_production or key.only_in_pr or key.changed)
        by_content = content is not None and (content.only_in_production or content.only_in_pr)
        return bool(
            self.added
            or self.removed
            or self.type_changed
            or self.rows_difference
            or keyed
            or by_content
        )

    def rows_compared(self) -> bool:
        """Whether its rows were compared (by key or by content): only then can it be
        said to hold no difference."""
        return self.status == "compared" and (
            self.by_key is not None or self.by_content is not None
        )

    def columns_text(self) -> str:
        """The columns added, removed and retyped (and how a retyped one's values were
        compared), as words."""
        columns = [f"+{c.name} ({c.type})" for c in self.added]
        columns += [f"−{c.name} ({c.type})" for c in self.removed]
        for c in self.type_changed:
            how = self.compared_as.get(c.name)
            compared = f", values compared as {how}" if how else ""
            columns.append(f"{c.name}: {c.production} → {c.pr}{compared}")
        return ", ".join(columns)

    def rows_text(self) -> str:
        rows = f"{self.rows_production} → {self.rows_pr}"
        if self.rows_difference:
            rows += f" ({self.rows_difference:+d}, {self.rows_percent or 0:+.1f}%)"
        return rows

    def by_key_text(self) -> str:
        """The rows matched by key (or, without one, by content), as words, with a few
        example keys; never "no difference" without having compared the rows."""
        key = self.by_key
        if key is None:
            return self._by_content_text()
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

    def _by_content_text(self) -> str:
        content = self.by_content
        why = self.no_key or "no key"
        if content is None:
            return f"{why}; not compared by key or content: counts only"
        parts = []
        if content.only_in_production:
            parts.append(f"{content.only_in_production} row(s) only in production")
        if content.only_in_pr:
            parts.append(f"{content.only_in_pr} row(s) only in the PR")
        said = "; ".join(parts) or "the same rows"
        return f"by content ({why}): {said}"

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
        content = self.by_content
        if content is not None and (content.only_in_production or content.only_in_pr):
            parts.append(
                f"{content.only_in_production + content.only_in_pr} row(s) differ by content"
            )
        if parts:
            return ", ".join(parts)
        return "no change" if self.rows_compared() else "counts only: the same row count"


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
        """The models to show: what changed, and what could not be shown not to."""
        return [m for m in self.models if not m.rows_compared() or m.changes_data()]

    def unchanged(self) -> list[ModelImpact]:
        """The models whose rows were compared and hold no difference."""
        return [m for m in self.models if m.rows_compared() and not m.changes_data()]

    def headline(self) -> str:
        """One line: how many models were compared and what the biggest changes are;
        "no data changed" only of models whose rows were compared."""
        changed = [m for m in self.models if m.status == "compared" and m.changes_data()]
        counts_only = [
            m
            for m in self.models
            if m.status == "compared" and not m.rows_compared() and not m.changes_data()
        ]
        compared = self.count("compared")
        parts = [f"{compared} model(s) compared"]
        if changed:
            parts.append(f"{len(changed)} changed")
        elif compared and not counts_only:
            parts.append("no data changed")
        others = (
            (len(counts_only), "by their row counts only"),
            (self.count("new"), "new"),
            (self.count("missing_in_production"), "not in production"),
            (self.count("not_compared"), "not compared"),
        )
        parts += [f"{count} {word}" for count, word in others if count]
        biggest = sorted(changed, key=lambda m: -abs(m.rows_difference or 0))[:2]
        said = "; ".join(f"{m.name}: {m.summary()}" for m in biggest)
        return ", ".join(parts) + (f" ({said})" if said else "")
