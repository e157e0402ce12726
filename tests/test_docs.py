"""Every metric, reason code, check, quarantine reason and policy key in the code is documented."""

from pathlib import Path

import pytest

from exportaudit.contract import QUARANTINE_REASONS
from exportaudit.metrics import HISTORY_METRICS, METRICS
from exportaudit.policy import POLICY_FIELDS
from exportaudit.vocabulary import CHECKS, ERROR_CLASSES, REASON_CODES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

NAMES = ([("metric", m) for m in [*METRICS, *HISTORY_METRICS]] + [("reason_code", c) for c in REASON_CODES]
         + [("check", c) for c in CHECKS] + [("error_class", c) for c in ERROR_CLASSES]
         + [("quarantine", q) for q in QUARANTINE_REASONS] + [("policy", p) for p in POLICY_FIELDS])


@pytest.mark.parametrize(("kind", "name"), NAMES)
def test_documented_in_readme(kind, name):
    assert f"`{name}`" in README, f"{kind} {name} is not documented in README.md"
