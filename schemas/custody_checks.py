"""Pandera model of the accepted `custody_checks` table (docs/inputs.md#input-logs): the analysts' data dictionary for it."""

from exportaudit.contract import CUSTODY_CHECKS
from schemas._columns import accepted_schema

schema = accepted_schema(CUSTODY_CHECKS)
