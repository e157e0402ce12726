"""Pandera model of the accepted `exports` table (docs/inputs.md#input-logs): the analysts' data dictionary for it."""

from exportaudit.contract import EXPORTS
from schemas._columns import accepted_schema

schema = accepted_schema(EXPORTS)
