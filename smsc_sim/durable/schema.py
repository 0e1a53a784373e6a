"""
The durable store file's format (:mod:`smsc_sim.durable.sqlite`): its tables
and schema version, the order of a record's content fields, and the error
that says the store cannot be used.

Plain values only, so that writing entries (:mod:`smsc_sim.durable.rows`) and
checking them when read back (:mod:`smsc_sim.durable.readback`) share them
without importing each other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CONTENT", "SCHEMA", "SCHEMA_VERSION", "Messages", "StoreError"]

#: "1" kept pickles (refused: see :func:`smsc_sim.durable.rows.open_store`); "2" keeps JSON text
SCHEMA_VERSION = "2"
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (
    generation INTEGER NOT NULL, part INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (generation, part));
"""
#: journaled messages by (cluster, key): [content, progress, plan, base_time]
Messages = dict[tuple[str, str], list[Any]]


class StoreError(ValueError):
    """The durable store cannot be used; the message names the store and says why, fit to show as is."""


#: record fields copied as they are (set at accept, changed only by a replace), in ``content`` order
CONTENT = (
    "message_id", "number", "direction", "command", "account", "instance", "session_id", "service_type",
    "source_addr", "source_ton", "source_npi", "destination_addr", "dest_ton", "dest_npi", "esm_class",
    "protocol_id", "priority_flag", "data_coding", "text", "encoding", "undecodable", "binary",
    "registered_delivery", "submit_time", "schedule_time", "validity_time", "rule", "replaced_time",
)  # fmt: skip
