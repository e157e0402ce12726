"""Pandera model of the accepted `custody_checks` table (SPEC 1): the analysts' data dictionary for it."""

from exportaudit.contract import CUSTODY_CHECKS
from schemas._columns import accepted_schema

schema = accepted_schema(CUSTODY_CHECKS)
