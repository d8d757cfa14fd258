"""What a pull request does to the data: each model a pull-request run built, compared
in the warehouse with production's relation of the same node (plan.py: which models,
which relations, which key; program.py: the Jinja the comparison runs as; compare.py:
running it through the engine, bounded; verdict.py: the raw results as the report's
`impact`, and the gate)."""
