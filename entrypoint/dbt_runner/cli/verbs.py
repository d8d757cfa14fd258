"""Every verb, and what it does in one line (the top-level help lists them)."""

VERBS = {
    "run": "run the job (the default verb)",
    "retry": "re-run what the last run (or --from-run RUN_ID) did not finish",
    "lint": "lint the project's SQL (SQLFluff, dbt templater); findings fail it",
    "remote": "run the job as an ECS task (DBT_RUNNER_REMOTE__*), its log and reports here",
    "cleanup": "drop a pull request's schemas (--pr N)",
    "prepare": "bake the project into its image: packages installed, parse cached (a RUN)",
    "check": "validate the settings and print them, secrets redacted",
    "plan": "print every dbt command `run` would make, and what it would find; runs nothing",
    "version": "the runner's version, dbt-core's and each adapter's",
    "dbt": "any dbt command, with the runner's project, profile and secrets: dbt -- ARGS",
}
HELP = ("help", "--help", "-h")


def top_level_help() -> str:
    verbs = "\n".join(f"  {verb:<9} {what}" for verb, what in VERBS.items())
    return (
        "usage: dbt-runner [VERB] [FLAGS]\n\n"
        "Run a dbt project as a production job. Settings come from DBT_RUNNER_* variables;\n"
        "flags override them. The verb defaults to run.\n\n"
        f"verbs:\n{verbs}\n\n"
        "`dbt-runner VERB --help` lists a verb's flags (docs/settings.md).\n"
    )
