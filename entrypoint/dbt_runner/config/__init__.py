"""The job's settings: one validated pydantic-settings model (model.py) with its
nested groups (groups.py), their vocabulary (kinds.py) and value types (values.py), and
how they are loaded from the environment and flags (load.py)."""

from dbt_runner.config.groups import (
    CredentialsSettings,
    FreshSettings,
    HistorySettings,
    LineageSettings,
    NotifySettings,
    SlimSettings,
    Trigger,
    WarehouseSettings,
)
from dbt_runner.config.kinds import (
    BUILDING_PHASES,
    JOB_PHASES,
    PHASE_ORDER,
    STATE_JOBS,
    WRITING_PHASES,
    Adapter,
    Concurrency,
    Job,
    LogFormat,
    MetricsMode,
    Phase,
    Policy,
    ProfileSource,
)
from dbt_runner.config.load import (
    NotifyOnly,
    describe_error,
    known_env_names,
    load_notify_settings,
    load_settings,
    unknown_env_names,
)
from dbt_runner.config.model import Settings
from dbt_runner.config.values import ENV_PREFIX, NESTED_DELIMITER, http_url, interval, new_run_id

__all__ = [
    "BUILDING_PHASES",
    "ENV_PREFIX",
    "JOB_PHASES",
    "NESTED_DELIMITER",
    "PHASE_ORDER",
    "STATE_JOBS",
    "WRITING_PHASES",
    "Adapter",
    "Concurrency",
    "CredentialsSettings",
    "FreshSettings",
    "HistorySettings",
    "Job",
    "LineageSettings",
    "LogFormat",
    "MetricsMode",
    "NotifyOnly",
    "NotifySettings",
    "Phase",
    "Policy",
    "ProfileSource",
    "Settings",
    "SlimSettings",
    "Trigger",
    "WarehouseSettings",
    "describe_error",
    "http_url",
    "interval",
    "known_env_names",
    "load_notify_settings",
    "load_settings",
    "new_run_id",
    "unknown_env_names",
]
