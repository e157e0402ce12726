"""Pandera model of the accepted `alert_acknowledgements` table (docs/inputs.md): the analysts' data dictionary for it."""

from exportaudit.contract import ALERT_ACKNOWLEDGEMENTS
from schemas._columns import accepted_schema

schema = accepted_schema(ALERT_ACKNOWLEDGEMENTS)
