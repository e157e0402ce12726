"""Pandera model of the accepted `deliveries` table (SPEC 1): the analysts' data dictionary for it."""

from exportaudit.contract import DELIVERIES
from schemas._columns import accepted_schema

schema = accepted_schema(DELIVERIES)
