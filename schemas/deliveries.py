"""Pandera model of the accepted `deliveries` table (docs/inputs.md#input-logs): the analysts' data dictionary for it."""

from exportaudit.contract import DELIVERIES
from schemas._columns import accepted_schema

schema = accepted_schema(DELIVERIES)
