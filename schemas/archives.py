"""Pandera model of the accepted `archives` table (docs/inputs.md#input-logs): the analysts' data dictionary for it."""

from exportaudit.contract import ARCHIVES
from schemas._columns import accepted_schema

schema = accepted_schema(ARCHIVES)
