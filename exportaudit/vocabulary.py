"""Names shared across exportaudit, each written once and imported everywhere: exit codes,
run statuses, default paths, the retry plan's decisions, reason codes and error classes,
alert severities, archive health checks and --fail-on levels.

The rules that give these names their meaning stay with the transforms
(transforms/retry_plan.py, transforms/archive_health.py); this module only names them.
No heavy imports: the command line reads it before anything else is loaded.
"""

from __future__ import annotations

from pathlib import Path

# ---------------------------------------------------------------- the command line
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE = 0, 1, 2, 3  # done, anything else, unusable input, a gate failed

# runs.status: a failed gate still writes everything, then exits EXIT_GATE.
SUCCEEDED, GATE_FAILED = "succeeded", "gate_failed"

DEFAULT_DB = Path("data/exportaudit.duckdb")
DEFAULT_OUT = Path("reports")
GENERATED_BY_RUN, GENERATED_BY_SCHEDULE, GENERATED_BY_API = "exportaudit run", "exportaudit schedule", "exportaudit api"

# ---------------------------------------------------------------- the retry plan (docs/retry-plan.md)
RETRY, WAIT, HOLD, SUPPRESS = "retry", "wait", "hold", "suppress"
DECISIONS = (RETRY, WAIT, HOLD, SUPPRESS)  # also the order of the plan and of the report
SCHEDULED_DECISIONS = (RETRY, WAIT)  # the decisions that carry a next_attempt_at

REASON_CODES = (  # in the order the rules are tried; eligible when none fires
    "export_unknown", "export_not_verified", "attempts_exhausted", "delivery_expired", "permanent_error",
    "unclassified_error", "unsafe_without_idempotency_key", "retry_after_pending", "backoff_pending", "eligible",
)
THROTTLED, UNAVAILABLE, AMBIGUOUS, PERMANENT, UNKNOWN = "throttled", "unavailable", "ambiguous", "permanent", "unknown"
ERROR_CLASSES = (THROTTLED, UNAVAILABLE, AMBIGUOUS, PERMANENT, UNKNOWN)

# ---------------------------------------------------------------- archive health (docs/archive-health.md)
CRITICAL, WARNING, HEALTHY = "critical", "warning", "healthy"
SEVERITIES = (CRITICAL, WARNING)  # worst first: the order of the alerts and of the report
CUSTODY_STATUSES = (CRITICAL, WARNING, HEALTHY)

# Checks on each archive reference of a checked export, on its effective values.
REFERENCE_CHECKS = (
    "object_missing", "digest_mismatch", "digest_unverifiable", "not_immutable", "governance_mode",
    "retention_missing", "retention_expired", "retention_expiring", "retention_short", "check_stale",
)
MISSING_REFERENCE = "missing_reference"  # a checked export with no reference at all
ORPHAN_REFERENCE = "orphan_reference"  # a reference naming an export with no export record
EXPORT_CHECKS = (MISSING_REFERENCE,)
ORPHAN_CHECKS = (ORPHAN_REFERENCE,)
CHECKS = REFERENCE_CHECKS + EXPORT_CHECKS + ORPHAN_CHECKS

# --fail-on: exit EXIT_GATE when an alert of this severity or worse exists.
NEVER = "never"
FAIL_ON_LEVELS = (NEVER, WARNING, CRITICAL)
