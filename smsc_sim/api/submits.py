"""
``GET /api/v1/submits``: every submit an ESME sent, with the answer it got.

The message store holds what the SMSC accepted; a submit it refused
(throttled, invalid destination, an error-code scenario, a generic_nack)
leaves no message behind.  A test of an ESME's error handling wants to see
those too, so this log pairs, from the event bus, each ``submit_sm``,
``data_sm`` and ``submit_multi`` that came in with the response that went
out (same session, same sequence_number), accepted or not.

It is bounded: the newest :data:`MAX_SUBMITS` entries (fewer when the
store itself is configured smaller) are kept, older ones are forgotten,
and a submit not yet answered is kept as ``"status": null``.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from smsc_sim.api.http import APIError, Call, JSONAPI, check_keys, excerpt, number, text
from smsc_sim.contracts import Event
from smsc_sim.smpp.constants import RESPONSE_BIT, parse_status, status_name

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

#: command_id -> name of the requests logged
SUBMIT_COMMANDS = {0x00000004: "submit_sm", 0x00000103: "data_sm", 0x00000021: "submit_multi"}
_GENERIC_NACK = 0x80000000
#: most submits remembered (the store's own bound, ``core.store_max_messages``, when smaller)
MAX_SUBMITS = 100_000
#: the filters of ``GET /api/v1/submits``
FILTERS = ("account", "instance", "status", "command", "destination", "destination_prefix", "session_id")
#: most entries one page can hold
MAX_LIMIT = 10_000


def _destinations(params: dict[str, Any]) -> list[str]:
    """The destination address(es) of a submit's parameters, as text."""
    found = params.get("destination_addr")
    if found is not None:
        return [_text(found)]
    listed = params.get("dest_address") or ()
    addresses = []
    for item in listed if isinstance(listed, (list, tuple)) else ():
        value = item.get("destination_addr") if isinstance(item, dict) else getattr(item, "destination_addr", None)
        if value is None and isinstance(item, dict):
            value = item.get("dl_name")
        if value is not None:
            addresses.append(_text(value))
    return addresses


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


class SubmitLog:
    """
    The submits of one simulator, paired with their responses from its events.

    :param simulator: whose events are followed and whose sessions name the account.
    :param bound: most entries kept (default: :data:`MAX_SUBMITS`, or the store's bound if smaller).
    """

    def __init__(self, simulator: Simulator, bound: int | None = None) -> None:
        self.simulator = simulator
        if bound is None:
            bound = min(MAX_SUBMITS, max(1, int(simulator.config.core.store_max_messages)))
        self.bound = bound
        self.entries: deque[dict[str, Any]] = deque(maxlen=bound)
        #: (instance, session_id, sequence_number) -> the entry waiting for its response
        self._pending: dict[tuple[Any, Any, int], dict[str, Any]] = {}
        self._number = 0
        self._unsubscribe = simulator.events.subscribe(self.observe)

    def close(self) -> None:
        """Stop following events."""
        self._unsubscribe()

    def clear(self) -> None:
        """Forget every entry (the API's reset)."""
        self.entries.clear()
        self._pending.clear()

    def observe(self, event: Event) -> None:
        """Log a submit coming in, or complete one with the response going out."""
        kind = event.kind
        if kind == "pdu_in":
            pdu = event.data.get("pdu")
            command = SUBMIT_COMMANDS.get(getattr(pdu, "command_id", -1))
            if command is not None:
                self._request(event, pdu, command)
        elif kind == "pdu_out":
            pdu = event.data.get("pdu")
            command_id = getattr(pdu, "command_id", -1)
            is_answer = command_id == _GENERIC_NACK or (
                command_id >= 0 and command_id & RESPONSE_BIT and command_id & ~RESPONSE_BIT in SUBMIT_COMMANDS
            )
            if is_answer and pdu is not None:
                key = (event.data.get("instance"), event.data.get("session_id"), pdu.sequence_number)
                entry = self._pending.pop(key, None)
                if entry is not None:
                    self._answer(entry, event, pdu)
        elif kind == "session_closed" and self._pending:
            closed = (event.data.get("instance"), event.data.get("session_id"))
            for key in [key for key in self._pending if key[:2] == closed]:
                del self._pending[key]

    def _request(self, event: Event, pdu: Any, command: str) -> None:
        data = event.data
        instance, session_id = data.get("instance"), data.get("session_id")
        account = None
        runtime = self.simulator.instances.get(str(instance))
        if runtime is not None:
            session = runtime.sessions.get(session_id) if isinstance(session_id, int) else None
            account = getattr(session, "system_id", None)
        params = getattr(pdu, "params", {}) or {}
        self._number += 1
        entry: dict[str, Any] = {
            "number": self._number,
            "time": event.time,
            "account": account,
            "instance": instance,
            "session_id": session_id,
            "command": command,
            "sequence_number": pdu.sequence_number,
            "source_addr": _text(params.get("source_addr", "")),
            "destination_addr": _destinations(params),
            "status": None,
            "status_name": None,
            "message_id": None,
            "answered_at": None,
        }
        self.entries.append(entry)
        self._pending[(instance, session_id, pdu.sequence_number)] = entry
        while len(self._pending) > self.bound:
            # never answered (the entry itself has left the deque): forget the oldest
            del self._pending[next(iter(self._pending))]

    @staticmethod
    def _answer(entry: dict[str, Any], event: Event, pdu: Any) -> None:
        params = getattr(pdu, "params", {}) or {}
        message_id = params.get("message_id")
        entry["status"] = pdu.command_status
        entry["status_name"] = status_name(pdu.command_status)
        entry["message_id"] = _text(message_id) if message_id not in (None, b"", "") else None
        entry["answered_at"] = event.time
        if pdu.command_id == _GENERIC_NACK:
            entry["response"] = "generic_nack"

    def select(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """The entries matching every filter, oldest first."""
        found = []
        status = filters.get("status")
        destination = filters.get("destination")
        prefix = filters.get("destination_prefix")
        for entry in self.entries:
            if (
                any(filters.get(k) is not None and entry[k] != filters[k] for k in ("account", "instance", "command"))
                or ("session_id" in filters and entry["session_id"] != filters["session_id"])
                or (status is not None and entry["status"] != status)
                or (destination is not None and destination not in entry["destination_addr"])
                or (prefix is not None and not any(d.startswith(prefix) for d in entry["destination_addr"]))
            ):
                continue
            found.append(entry)
        return found


class SubmitRoutes:
    """The ``/submits`` resource of one simulator."""

    def __init__(self, simulator: Simulator) -> None:
        self.log = SubmitLog(simulator)

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
        found = self.log.select(filters)
        page = found[offset : offset + limit]
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
        """Stop following events."""
        self.log.close()
