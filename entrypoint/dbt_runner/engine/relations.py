"""Which of the manifest's relations the warehouse holds, listed through the adapter.

Before a state is promoted the runner checks that every relation it names exists: one
listing per schema (dbt's `list_relations_without_caching`, the adapter's own query or
API), compiled as an inline node on the run's manifest, so every adapter lists the way
dbt itself does. Nothing is rendered; each schema's names leave as a log event.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from dbt_runner.engine.kinds import makes_relation
from dbt_runner.engine.session import exception_message

if TYPE_CHECKING:
    from dbt_runner.engine.session import DbtSession

PREFIX = "dbt-runner-relations "
LOG_EVENTS = {"JinjaLogDebug", "JinjaLogInfo"}

# One listing per schema; the adapter returns an agate table (name column) or, where
# it lists through an API (BigQuery, Redshift's SHOW), relations.
TEMPLATE = """{%- if execute -%}
{%- for place in places -%}
  {%- set schema_relation = api.Relation.create(
        database=place.database, schema=place.schema).without_identifier() -%}
  {%- set listed = list_relations_without_caching(schema_relation) -%}
  {%- set names = [] -%}
  {%- if listed.rows is defined -%}
    {%- for row in listed.rows -%}{%- do names.append(row['name']) -%}{%- endfor -%}
  {%- else -%}
    {%- for relation in listed -%}{%- do names.append(relation.identifier) -%}{%- endfor -%}
  {%- endif -%}
  {%- set found = {'database': place.database, 'schema': place.schema, 'names': names} -%}
  {%- do log('PREFIX' ~ tojson(found)) -%}
{%- endfor -%}
{%- endif -%}""".replace("PREFIX", PREFIX)

Place = tuple[str | None, str]


def expected(manifest: Any) -> dict[Place, dict[str, str]]:
    """The relations the manifest names, by schema: {(database, schema): {identifier
    (lower case): unique_id}}: every enabled model, seed and snapshot that makes one."""
    places: dict[Place, dict[str, str]] = defaultdict(dict)
    for unique_id, node in manifest.nodes.items():
        if not makes_relation(node):
            continue
        identifier = getattr(node, "alias", None) or node.name
        places[(node.database, node.schema)][identifier.lower()] = unique_id
    return places


def program(places: list[Place]) -> str:
    work = [{"database": database, "schema": schema} for database, schema in places]
    return "{%- set places = fromjson('" + quoted(json.dumps(work)) + "') -%}\n" + TEMPLATE


def quoted(text: str) -> str:
    """`text` inside a single-quoted Jinja string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def missing_relations(session: DbtSession) -> list[str]:
    """The unique ids of the manifest's relations the warehouse does not hold, sorted.
    RuntimeError with dbt's words when the warehouse could not be listed."""
    manifest = session.manifest
    if manifest is None:
        raise RuntimeError("the project was not parsed")
    wanted = expected(manifest)
    listed: dict[Place, set[str]] = {}

    def listen(event: Any) -> None:
        if event.info.name in LOG_EVENTS and str(event.data.msg).startswith(PREFIX):
            found = json.loads(str(event.data.msg)[len(PREFIX) :])
            names = {str(name).lower() for name in found["names"]}
            listed[(found["database"], found["schema"])] = names

    places = sorted(wanted, key=lambda place: (place[0] or "", place[1]))
    result = session.render_inline(program(places), listen, cached=False)
    if result.exception is not None or not result.success:
        why = exception_message(result.exception) if result.exception else "dbt failed"
        raise RuntimeError(f"the warehouse's relations could not be listed: {why}")
    missing = []
    for place, identifiers in wanted.items():
        present = listed.get(place)
        if present is None:
            raise RuntimeError(f"the warehouse did not list schema {place[1]}")
        missing += [uid for name, uid in identifiers.items() if name not in present]
    return sorted(missing)
