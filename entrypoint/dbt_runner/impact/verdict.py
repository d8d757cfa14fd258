"""The template's findings as the report's `impact`, and the gate on them."""

from __future__ import annotations

from dbt_runner.impact.compare import Raw
from dbt_runner.impact.plan import Comparison
from dbt_runner.report.impact import Column, ContentDiff, KeyDiff, ModelImpact, TypeChange

EXAMPLE_KINDS = ("only_in_production", "only_in_pr", "changed")


def model_impact(comparison: Comparison, raw: Raw | None) -> ModelImpact:
    """One model's entry, from what its comparison found (None: it never began)."""
    impact = ModelImpact(
        unique_id=comparison.unique_id,
        name=comparison.name,
        status="compared",
        pr=str(comparison.pr),
        production=str(comparison.production) if comparison.production else None,
        modified=comparison.modified,
        seconds=raw.seconds if raw else 0.0,
    )
    data = raw.data if raw else None
    if raw is None or data is None:
        impact.status = "not_compared"
        impact.reason = raw.not_compared if raw else "the comparison did not begin"
    elif data.get("pr_missing"):
        impact.status, impact.reason = "not_compared", "the pull request's relation is missing"
    elif data.get("production_missing"):
        new = comparison.production is None
        impact.status = "new" if new else "missing_in_production"
        impact.production = None
        impact.rows_pr = data.get("rows_pr")
    else:
        _compared(impact, comparison, data)
    return impact


def _compared(impact: ModelImpact, comparison: Comparison, data: dict) -> None:  # type: ignore[type-arg]
    production = {name: kind for name, kind in data["production_columns"]}
    pr = {name: kind for name, kind in data["pr_columns"]}
    impact.added = [Column(name=n, type=t) for n, t in pr.items() if n not in production]
    impact.removed = [Column(name=n, type=t) for n, t in production.items() if n not in pr]
    impact.type_changed = [
        TypeChange(name=n, production=production[n], pr=t)
        for n, t in pr.items()
        if n in production and production[n] != t
    ]
    impact.compared_as = dict(data.get("retyped") or {})
    counts = data["counts"]
    impact.rows_production, impact.rows_pr = counts[0], counts[1]
    if "key" not in data:
        impact.no_key = comparison.no_key or (
            f"the key ({', '.join(comparison.key)}) is not in both relations"
        )
        if "content" in data:
            only_production, only_pr = data["content"]
            impact.by_content = ContentDiff(
                columns=data["compared"], only_in_production=only_production, only_in_pr=only_pr
            )
        return
    compared = data["compared"]
    examples: dict[str, list[str]] = {}
    for kind, *key in data.get("examples", []):
        examples.setdefault(kind, []).append(", ".join(str(part) for part in key))
    impact.by_key = KeyDiff(
        key=data["key"],
        only_in_production=counts[2],
        only_in_pr=counts[3],
        changed=counts[4],
        changed_columns={name: n for name, n in zip(compared, counts[5:], strict=True) if n},
        examples={kind: examples[kind] for kind in EXAMPLE_KINDS if kind in examples},
    )


def gate(models: list[ModelImpact], max_row_loss_pct: float | None) -> str | None:
    """Why the pull request fails the gate (a model loses more of its rows than
    allowed), or None."""
    if max_row_loss_pct is None:
        return None
    losing = [
        m for m in models if m.rows_percent is not None and -m.rows_percent > max_row_loss_pct
    ]
    if not losing:
        return None
    said = ", ".join(f"{m.name} {m.rows_percent:+.1f}%" for m in losing)
    return (
        f"the pull request loses more than {max_row_loss_pct:g}% of the rows of {said} "
        "(DBT_RUNNER_PR_IMPACT__MAX_ROW_LOSS_PCT)"
    )
