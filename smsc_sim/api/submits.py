"""
``GET /api/v1/submits``: every submit an ESME sent, with the answer it got.

The message store holds what the SMSC accepted; a submit it refused
(throttled, invalid destination, an error-code scenario, a generic_nack)
leaves no message behind.  A test of an ESME's error handling wants to see
those too, so this log pairs each ``submit_sm``, ``data_sm`` and
``submit_multi`` that came in with the response that went out (same
session, same sequence_number), accepted or not.

The pairing is done by the :class:`~smsc_sim.api.tally.PduTally` that the
sessions call with every PDU: it keeps one compact record per submit, and
this log builds the JSON of the records a query asks for, when it asks.

It is bounded: the newest :data:`~smsc_sim.api.tally.MAX_SUBMITS` entries
(fewer when the store itself is configured smaller) are kept, older ones
are forgotten, and a submit not yet answered is kept as ``"status": null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from smsc_sim.api.http import APIError, Call, JSONAPI, check_keys, excerpt, number, text
from smsc_sim.api.tally import (
    ACCOUNT,
    ANSWERED_AT,
    COMMAND,
    DESTINATION,
    INSTANCE,
    MESSAGE_ID,
    NACKED,
    NUMBER,
    SEQUENCE,
    SESSION,
    SOURCE,
    STATUS,
    SUBMIT_COMMANDS,
    TIME,
    PduTally,
    SubmitRecord,
    tally_of,
    text_of,
)
from smsc_sim.smpp.constants import parse_status, status_name

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

#: the filters of ``GET /api/v1/submits``
FILTERS = ("account", "instance", "status", "command", "destination", "destination_prefix", "session_id")
#: most entries one page can hold
MAX_LIMIT = 10_000
_COMMAND_IDS = {name: command_id for command_id, name in SUBMIT_COMMANDS.items()}


def destinations(record: SubmitRecord) -> list[str]:
    """The destination address(es) of a submit record, as text."""
    found = record[DESTINATION]
    if isinstance(found, list):
        return list(found)  # a submit_multi's, made text when it came in
    return [text_of(found)]


def entry(record: SubmitRecord) -> dict[str, Any]:
    """The JSON of one submit record."""
    answered = len(record) > STATUS
    status = record[STATUS] if answered else None
    message_id = record[MESSAGE_ID] if answered else None
    made: dict[str, Any] = {
        "number": record[NUMBER],
        "time": record[TIME],
        "account": record[ACCOUNT],
        "instance": record[INSTANCE],
        "session_id": record[SESSION],
        "command": SUBMIT_COMMANDS[record[COMMAND]],
        "sequence_number": record[SEQUENCE],
        "source_addr": text_of(record[SOURCE]),
        "destination_addr": destinations(record),
        "status": status,
        "status_name": None if status is None else status_name(status),
        "message_id": text_of(message_id) if message_id not in (None, b"", "") else None,
        "answered_at": record[ANSWERED_AT] if answered else None,
    }
    if answered and record[NACKED]:
        made["response"] = "generic_nack"
    return made


class SubmitLog:
    """
    The submits of one simulator, paired with their responses.

    :param simulator: whose sessions are followed.
    :param bound: most entries kept (default: :data:`~smsc_sim.api.tally.MAX_SUBMITS`, or the store's bound if
        smaller); only when the log makes its own tally.
    :param tally: the PDU tally that keeps the records (made, and closed by :meth:`close`, when not given).
    """

    def __init__(self, simulator: Simulator, bound: int | None = None, tally: PduTally | None = None) -> None:
        self._owns_tally = tally is None
        if tally is None:
            tally = tally_of(simulator, bound)
        self.tally = tally

    @property
    def bound(self) -> int:
        """Most entries kept."""
        return self.tally.submits_bound

    @property
    def entries(self) -> list[dict[str, Any]]:
        """Every entry kept, oldest first."""
        return [entry(record) for record in self.tally.submits()]

    def close(self) -> None:
        """Stop following the sessions (when the log made its own tally)."""
        if self._owns_tally:
            self.tally.close()

    def clear(self) -> None:
        """Forget every entry (the API's reset)."""
        self.tally.clear_submits()

    def records(self, filters: dict[str, Any]) -> list[SubmitRecord]:
        """The records matching every filter, oldest first."""
        found = []
        account, instance = filters.get("account"), filters.get("instance")
        command = _COMMAND_IDS.get(filters["command"], -1) if filters.get("command") is not None else None
        session = filters.get("session_id", ...)
        status = filters.get("status")
        destination = filters.get("destination")
        prefix = filters.get("destination_prefix")
        for record in self.tally.submits():
            if (
                (account is not None and record[ACCOUNT] != account)
                or (instance is not None and record[INSTANCE] != instance)
                or (command is not None and record[COMMAND] != command)
                or (session is not ... and record[SESSION] != session)
                or (status is not None and (len(record) <= STATUS or record[STATUS] != status))
            ):
                continue
            if destination is not None or prefix is not None:
                addresses = destinations(record)
                if destination is not None and destination not in addresses:
                    continue
                if prefix is not None and not any(d.startswith(prefix) for d in addresses):
                    continue
            found.append(record)
        return found

    def select(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """The entries matching every filter, oldest first."""
        return [entry(record) for record in self.records(filters)]


class SubmitRoutes:
    """The ``/submits`` resource of one simulator."""

    def __init__(self, simulator: Simulator, tally: PduTally | None = None) -> None:
        self.log = SubmitLog(simulator, tally=tally)

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/submits", "GET", self.list)

    def list(self, call: Call) -> dict[str, Any]:
        """Submits matching the query's filters, a page at a time, with how many match in all."""
        query = call.query
        check_keys(query, FILTERS + ("limit", "offset"), "query")
        filters: dict[str, Any] = {}
        for key in ("account", "instance", "command", "destination", "destination_prefix"):
            if query.get(key):
                filters[key] = text(query[key], key)
        if "command" in filters and filters["command"] not in SUBMIT_COMMANDS.values():
            raise APIError(
                400, f"command must be one of {', '.join(SUBMIT_COMMANDS.values())}, got {excerpt(filters['command'])}"
            )
        if query.get("status"):
            try:
                filters["status"] = parse_status(text(query["status"], "status"))
            except ValueError as e:
                raise APIError(400, str(e)) from None
        if query.get("session_id"):
            filters["session_id"] = int(number(query["session_id"], "session_id", 0, integer=True))
        limit = min(int(number(query.get("limit", 100), "limit", 1, integer=True)), MAX_LIMIT)
        offset = int(number(query.get("offset", 0), "offset", 0, integer=True))
        found = self.log.records(filters)
        page = [entry(record) for record in found[offset : offset + limit]]
        return {
            "submits": page,
            "count": len(page),
            "total": len(found),
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if offset + limit < len(found) else None,
            "kept": self.log.bound,
        }

    def clear(self) -> None:
        """Forget every submit."""
        self.log.clear()

    def close(self) -> None:
        """Stop following the sessions."""
        self.log.close()
