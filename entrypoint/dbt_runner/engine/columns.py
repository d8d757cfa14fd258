"""The columns the warehouse reports for relations, through the adapter, and a slim
job's changes as dbt sees them, with their compiled SQL now: what reach/ reads.

Columns are listed as dbt lists them (`adapter.get_columns_in_relation`), compiled as
an inline node on the run's manifest; each relation's names leave as a log event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.copies import working_copy
from dbt_runner.engine.relations import LOG_EVENTS, quoted
from dbt_runner.engine.session import NO_CACHE, NO_WRITE, exception_message

if TYPE_CHECKING:
    from dbt_runner.engine.session import DbtSession

PREFIX = "dbt-runner-columns "
TEMPLATE = """{%- if execute -%}
{%- for place in places -%}
  {%- set relation = api.Relation.create(
        database=place.database, schema=place.schema, identifier=place.identifier) -%}
  {%- set names = [] -%}
  {%- for column in adapter.get_columns_in_relation(relation) -%}
    {%- do names.append(column.name) -%}
  {%- endfor -%}
  {%- do log('PREFIX' ~ tojson({'key': place.key, 'names': names})) -%}
{%- endfor -%}
{%- endif -%}""".replace("PREFIX", PREFIX)

# A relation as the SQL names it: (database, schema, identifier); a part may be "".
Place = tuple[str, str, str]
# The changes dbt sees beyond a model's SQL: its config, relation, docs, contract, the
# macros it calls, or a node that is new.
BEYOND_SQL = [
    "state:new",
    "state:modified.configs",
    "state:modified.relation",
    "state:modified.persisted_descriptions",
    "state:modified.macros",
    "state:modified.contract",
]


def list_columns(session: DbtSession, places: Sequence[Place]) -> dict[Place, list[str]]:
    """Each relation's columns, in one compile; [] for a relation the warehouse lacks.
    RuntimeError with dbt's words when the warehouse could not be asked."""
    found: dict[Place, list[str]] = {}

    def listen(event: Any) -> None:
        message = str(event.data.msg) if event.info.name in LOG_EVENTS else ""
        if message.startswith(PREFIX):
            said = json.loads(message[len(PREFIX) :])
            d, s, i = said["key"]
            found[(d, s, i)] = [str(name) for name in said["names"]]

    work = [
        {"database": d or None, "schema": s or None, "identifier": i, "key": [d, s, i]}
        for d, s, i in places
    ]
    program = "{%- set places = fromjson('" + quoted(json.dumps(work)) + "') -%}\n" + TEMPLATE
    result = session.render_inline(program, listen, cached=False)
    if result.exception is not None or not result.success:
        why = exception_message(result.exception) if result.exception else "dbt failed"
        raise RuntimeError(f"the warehouse's columns could not be listed: {why}")
    return {place: found.get(place, []) for place in places}


def changed_nodes(session: DbtSession, state_args: list[str]) -> tuple[set[str], set[str]] | None:
    """dbt's `state:modified` against the state (`state_args`: --state and --defer), and
    those of them that changed beyond their SQL; None when dbt cannot say."""
    every = _listed(session, ["state:modified"], state_args)
    beyond = _listed(session, BEYOND_SQL, state_args)
    if every is None or beyond is None:
        return None
    return every, beyond & every


def _listed(session: DbtSession, select: list[str], state_args: list[str]) -> set[str] | None:
    args = ["ls", "--log-level", "none", "--select", *select, *state_args]
    output = ["--output", "json", "--output-keys", "unique_id"]
    result = session.invoke([*args, *output, *session.common()])
    if not result.success or result.result is None:
        return None
    return {json.loads(line)["unique_id"] for line in result.result}


def compiled_now(
    session: DbtSession, selectors: list[str], state_args: list[str]
) -> dict[str, str] | None:
    """The compiled SQL of the nodes `selectors` select, as the build will compile them
    (`state_args`: --state and --defer); None when dbt could not compile them."""
    if not selectors:
        return {}
    args = ["compile", "--log-level", "none", NO_WRITE, NO_CACHE, "--select", *selectors]
    args += state_args
    # On a copy: dbt compiles in place, and the build must compile these nodes afresh.
    result = session.invoke([*args, *session.common()], working_copy(session.manifest))
    if not result.success or result.result is None:
        return None
    return {
        item.node.unique_id: item.node.compiled_code
        for item in result.result.results
        if getattr(item.node, "compiled_code", None) is not None
    }
