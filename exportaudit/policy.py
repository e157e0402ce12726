"""Policy: every knob of docs/retry-plan.md#decision-rules, 3 and 1.5 in one typed object, loadable from TOML (docs/outputs.md#policy-file).

Values keep the type they were given (the defaults as the docs write them: 15, 2.0, ...),
so the policy block of an evidence document shows what was asked for.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class PolicyError(ValueError):
    """A policy key is unknown, of the wrong type or out of range; the message names the key."""


def _knob(default: Any, description: str, section: str, kind: str, minimum: float | None = None,
          maximum: float | None = None):
    meta = {"description": description, "section": section, "kind": kind, "min": minimum, "max": maximum}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Policy:
    # docs/retry-plan.md#decision-rules — delivery retry plan
    max_attempts: int = _knob(5, "Failed attempts after which a delivery is suppressed (attempts_exhausted).",
                              "retry", "int", 1)
    base_delay_minutes: float = _knob(15, "Backoff after the first failed attempt, in minutes.", "retry", "number", 0)
    backoff_multiplier: float = _knob(2.0, "Factor applied to the backoff for each further failed attempt.",
                                      "retry", "number", 1)
    max_delay_minutes: float = _knob(1440, "Cap on the backoff, in minutes.", "retry", "number", 0)
    max_delivery_age_days: float = _knob(7, "Age of the first attempt after which a delivery is suppressed "
                                            "(delivery_expired), in days.", "retry", "number", 0)
    idempotent_connector_kinds: list[str] = _knob(
        ["s3", "gcs", "azure_blob"], "Connector kinds that are safe to retry after an ambiguous error "
                                     "without an idempotency key.", "retry", "kinds")
    # docs/archive-health.md — archive reference health
    required_retention_days: float = _knob(2557, "Default custody period after generated_at, in days (7 years).",
                                           "health", "number", 0)
    expiry_warning_days: float = _knob(30, "Warn (retention_expiring) when retention ends within this many days.",
                                       "health", "number", 0)
    max_check_age_days: float = _knob(7, "A reference whose latest custody check is older is check_stale, in days.",
                                      "health", "number", 0)
    accept_governance_mode: bool = _knob(False, "Accept governance-mode locks (removes only governance_mode).",
                                         "health", "bool")
    s3_inventory_prefixes: list[str] = _knob(
        [""], "Key prefixes an S3 Inventory report covers in its bucket (the inventory's prefix filter, which its "
              "manifest does not record); the default covers the whole bucket (docs/real-sources.md#inventory-scope).",
        "health", "strings")
    # docs/inputs.md#bad-input-and-quarantine — input-quality gate
    max_quarantine_ratio: float = _knob(0.05, "Quarantined share of rows read above which the run exits 3.",
                                        "gate", "number", 0, 1)
    # docs/executions-and-acknowledgements.md — one section each, so each document's policy block holds exactly its key
    execution_grace_minutes: float = _knob(60, "Minutes after a retry record's next_attempt_at before it counts as "
                                               "not executed (retry_not_executed).", "executions", "number", 0)
    ack_sla_hours: float = _knob(24, "Hours a critical alert may stay unacknowledged after it was first seen "
                                     "before it is overdue.", "acknowledgements", "number", 0)

    def section(self, name: str) -> dict[str, Any]:
        """The keys of one section ("retry", "health", "executions" or "acknowledgements") with their values,
        for evidence documents."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)
                if f.metadata["section"] == name}

    def replace(self, **changes: Any) -> "Policy":
        return policy_from_mapping({**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, **changes})


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


POLICY_FIELDS = {f.name: f for f in dataclasses.fields(Policy)}


def _checked(key: str, value: Any) -> Any:
    meta = POLICY_FIELDS[key].metadata
    kind = meta["kind"]
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise PolicyError(f"policy key {key!r} must be an integer, got {value!r}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise PolicyError(f"policy key {key!r} must be a finite number, got {value!r}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise PolicyError(f"policy key {key!r} must be true or false, got {value!r}")
    elif kind == "strings":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"policy key {key!r} must be a list of strings, got {value!r}")
        value = list(value)  # prefixes compare exactly: kept as given
    elif kind == "kinds":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise PolicyError(f"policy key {key!r} must be a list of strings, got {value!r}")
        # Connector kinds are matched after trimming and lowercasing, as at ingest.
        value = list(dict.fromkeys(v.strip().lower() for v in value if v.strip()))
    low, high = meta["min"], meta["max"]
    if low is not None and value < low:
        raise PolicyError(f"policy key {key!r} must be >= {low}, got {value!r}")
    if high is not None and value > high:
        raise PolicyError(f"policy key {key!r} must be <= {high}, got {value!r}")
    return value


def policy_from_mapping(values: dict[str, Any]) -> Policy:
    """A validated Policy from any subset of the keys; unknown keys are refused."""
    unknown = sorted(set(values) - set(POLICY_FIELDS))
    if unknown:
        raise PolicyError(f"unknown policy key {unknown[0]!r} (known: {', '.join(POLICY_FIELDS)})")
    return Policy(**{key: _checked(key, value) for key, value in values.items()})


def load_policy(path: str | Path | None) -> Policy:
    """The policy of a TOML file of flat keys (docs/outputs.md#policy-file), or the defaults when no file is given."""
    if path is None:
        return Policy()
    try:
        with open(path, "rb") as handle:
            values = tomllib.load(handle)
    except OSError as error:
        raise PolicyError(f"policy file {path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy file {path}: not valid TOML ({error})") from None
    nested = [key for key, value in values.items() if isinstance(value, dict)]
    if nested:
        raise PolicyError(f"policy key {nested[0]!r}: the policy file holds flat keys, not tables")
    return policy_from_mapping(values)
