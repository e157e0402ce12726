"""Pandera model of the accepted `archives` table (SPEC 1): the analysts' data dictionary for it."""

from exportaudit.contract import ARCHIVES
from schemas._columns import accepted_schema

schema = accepted_schema(ARCHIVES)
