"""Pandera model of the accepted `retry_executions` table (docs/inputs.md): the analysts' data dictionary for it."""

from exportaudit.contract import RETRY_EXECUTIONS
from schemas._columns import accepted_schema

schema = accepted_schema(RETRY_EXECUTIONS)
