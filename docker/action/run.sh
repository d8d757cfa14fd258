#!/usr/bin/env bash
# The GitHub Action's step (action.yml): run the dbt-runner image on the repository's
# dbt project. Inputs arrive as INPUT_* variables (set by action.yml, so this script is
# plain bash a test can run); every DBT_RUNNER_*, DBT_ENV_*, AWS_*, GOOGLE_* and
# GITHUB_* variable of the step is passed to the container by name, never by value on
# the command line. Writes the step's outputs: exit-code, status, report.
set -euo pipefail

: "${INPUT_IMAGE:?the image input is required}"
workspace="${GITHUB_WORKSPACE:-$PWD}"
out="${RUNNER_TEMP:-/tmp}/dbt-runner"
mkdir -p "$out"

# An input given is a setting; an empty one leaves the step's own env (or the default).
set_from_input() {  # set_from_input VARIABLE VALUE
  if [ -n "$2" ]; then export "$1=$2"; fi
}
set_from_input DBT_RUNNER_JOB "${INPUT_JOB:-}"
set_from_input DBT_RUNNER_PR "${INPUT_PR:-}"
set_from_input DBT_RUNNER_ENV "${INPUT_ENV:-}"
set_from_input DBT_RUNNER_SELECT "${INPUT_SELECT:-}"
set_from_input DBT_RUNNER_EXCLUDE "${INPUT_EXCLUDE:-}"
set_from_input DBT_RUNNER_PHASES "${INPUT_PHASES:-}"
set_from_input DBT_RUNNER_TARGET "${INPUT_TARGET:-}"
set_from_input DBT_RUNNER_VARS "${INPUT_VARS:-}"
set_from_input DBT_RUNNER_STATE_URL "${INPUT_STATE_URL:-}"
set_from_input DBT_RUNNER_ARTIFACTS_URL "${INPUT_ARTIFACTS_URL:-}"
set_from_input DBT_RUNNER_THREADS "${INPUT_THREADS:-}"
set_from_input DBT_RUNNER_TIMEOUT_S "${INPUT_TIMEOUT:-}"
set_from_input GITHUB_TOKEN "${INPUT_GITHUB_TOKEN:-}"
export DBT_RUNNER_PROJECT_DIR="/github/workspace/${INPUT_PROJECT_DIR:-.}"
export DBT_RUNNER_REPORT_DIR=/out
command="${INPUT_COMMAND:-run}"
case "${INPUT_RUN_ON:-local}" in
  local)
    export DBT_RUNNER_ARTIFACTS_URL="${DBT_RUNNER_ARTIFACTS_URL:-/out/artifacts}" ;;
  ecs)  # the task publishes where its definition says; this container follows it
    [ "$command" = run ] || { echo "run-on: ecs runs the job (command: run), not '$command'" >&2; exit 3; }
    command=remote
    set_from_input DBT_RUNNER_REMOTE__CLUSTER "${INPUT_CLUSTER:-}"
    set_from_input DBT_RUNNER_REMOTE__TASK_DEFINITION "${INPUT_TASK_DEFINITION:-}"
    set_from_input DBT_RUNNER_REMOTE__CONTAINER "${INPUT_CONTAINER:-}"
    set_from_input DBT_RUNNER_REMOTE__SUBNETS "${INPUT_SUBNETS:-}"
    set_from_input DBT_RUNNER_REMOTE__SECURITY_GROUPS "${INPUT_SECURITY_GROUPS:-}"
    set_from_input DBT_RUNNER_REMOTE__PROJECT_URL "${INPUT_PROJECT_URL:-}" ;;
  *)
    echo "run-on must be local or ecs, not '${INPUT_RUN_ON}'" >&2; exit 3 ;;
esac

args=(run --rm --user "$(id -u):$(id -g)"
  -v "$workspace:/github/workspace:ro" -v "$out:/out"
  -e GITHUB_WORKSPACE=/github/workspace)
if [ -n "${INPUT_DOCKER_NETWORK:-}" ]; then args+=(--network "$INPUT_DOCKER_NETWORK"); fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  touch "$GITHUB_STEP_SUMMARY"
  args+=(-v "$GITHUB_STEP_SUMMARY:/github/step-summary.md" -e GITHUB_STEP_SUMMARY=/github/step-summary.md)
fi
while IFS= read -r name; do
  case "$name" in
    GITHUB_WORKSPACE | GITHUB_STEP_SUMMARY | GITHUB_OUTPUT | GITHUB_ENV | GITHUB_PATH | GITHUB_STATE) ;;
    DBT_RUNNER_* | DBT_ENV_* | AWS_* | GOOGLE_* | GITHUB_*) args+=(-e "$name") ;;
  esac
done < <(compgen -e)

code=0
"${DOCKER:-docker}" "${args[@]}" "$INPUT_IMAGE" "$command" || code=$?

report="$out/report.json"
status=""  # no report: settings that could not be read write none
if [ -f "$report" ]; then
  status=$(sed -n 's/^  "status": "\([a-z_]*\)",$/\1/p' "$report" | head -n 1)
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "exit-code=$code"
    echo "status=${status:-unknown}"
    echo "report=$report"
  } >>"$GITHUB_OUTPUT"
fi
exit "$code"
