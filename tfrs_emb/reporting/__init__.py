"""Reporting: tables and files that every experiment writes."""

from tfrs_emb.core.files import write_json
from tfrs_emb.core.files import write_text
from tfrs_emb.reporting.conditions import describe_conditions
from tfrs_emb.reporting.conditions import machine_conditions
from tfrs_emb.reporting.tables import format_number
from tfrs_emb.reporting.tables import markdown_table
