"""`python -m entrypoint`: the same as the `dbt-runner` console script."""

import sys

from entrypoint.cli import main

sys.exit(main())
