"""Which children a change can reach: a slim job's `state:modified+`, narrowed to the
descendants whose data a change can alter (DBT_RUNNER_SLIM__CHILDREN=affected).

sql.py reads compiled SQL with sqlglot, relations renamed to the nodes they hold;
flow.py follows columns through a query's scopes (what a change reaches, and where a
changed column decides which rows there are); decide.py walks the DAG from the changes
and says, for each descendant, build or skip and why; step.py gathers what they need
from dbt and the warehouse. Whenever the analysis is unsure, the node is built, as
`state:modified+` would build it.
"""
