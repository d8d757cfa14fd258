"""Running the job where the warehouse is: one ECS task started by `dbt-runner remote`,
followed until it stops (its log streamed, its exit code read), its reports brought
back to the caller."""
