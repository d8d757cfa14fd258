"""`python -m dbt_runner`: the same as the `dbt-runner` console script."""

import sys

from dbt_runner.cli import main

sys.exit(main())
