"""
The control API's message resources: listing with filters and paging, one
message with its history and texts, long-poll waits, MO injection and
forced receipts.
"""

from __future__ import annotations

import functools
import heapq
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall

from smsc_sim.api.http import APIError, Call, JSONAPI, JSONResponse, check_keys, excerpt, number, text
from smsc_sim.api.views import session_view
from smsc_sim.api.waiting import TooManyWaits, Waits
from smsc_sim.core.ids import NoIdAvailable
from smsc_sim.core.mo import mo_segments
from smsc_sim.core.store import MessageQuery
from smsc_sim.modes import DELIVERY_OUTCOMES, SPLIT_MODES, DeliveryOutcome, SplitMode
from smsc_sim.smpp.constants import STAT_STATE, MessageState

if TYPE_CHECKING:
    from smsc_sim.simulator import Simulator

#: the filters of a message query, as query-string (or wait body) names
#: (``source`` and ``destination`` match the whole address exactly; ``destination_prefix`` matches its start,
#: as a scenario rule's ``destination`` does)
FILTERS = (
    "account", "instance", "source", "destination", "destination_prefix", "state", "since", "until", "text",
    "direction",
)  # fmt: skip
#: the fields of an MO injection
MO_FIELDS = (
    "account", "source", "destination", "text", "data_hex", "encoding", "data_coding", "split", "instance", "count",
)  # fmt: skip
#: most MO records (deliver_sm parts) one POST /api/v1/mo may create: ``count`` x parts of the message
MAX_MO_RECORDS = 10_000
#: MO records made in one reactor turn (about 20-60 ms of work) before SMPP traffic gets its turn
MO_RECORDS_PER_TURN = 200
#: most messages one page can hold
MAX_LIMIT = 10_000
#: encoding names an MO may be given in, and the data_coding each means
ENCODINGS = {
    "default": 0,
    "gsm0338": 0,
    "ia5": 1,
    "ascii": 1,
    "latin-1": 3,
    "latin1": 3,
    "binary": 4,
    "ucs2": 8,
    "utf-16": 8,
}


def _submit_order(record: Any) -> tuple[float, int]:
    """Where a record sorts among every cluster's: by submit time, then by number."""
    return (record.submit_time, record.number)


def message_view(record: Any) -> dict[str, Any]:
    """A record as the API shows it: its own dict plus the reassembled text at the top."""
    view: dict[str, Any] = record.to_dict() if hasattr(record, "to_dict") else dict(record)
    concat = view.get("concat")
    view["reassembled_text"] = concat.get("text") if concat else view.get("text")
    return view


def _state(value: str) -> str:
    """A state filter: a message_state name or a receipt stat word, as the state name."""
    word = value.strip().upper()
    if word == "PENDING":
        return "pending"
    if word in MessageState.__members__:
        return word
    if word in STAT_STATE:
        return STAT_STATE[word].name
    raise APIError(
        400,
        f"state must be a message state ({', '.join(MessageState.__members__)}), a receipt stat or 'pending', "
        f"got {excerpt(value)}",
    )


def parse_filters(source: dict[str, Any]) -> dict[str, Any]:
    """The core's query keywords from query-string or JSON values."""
    filters: dict[str, Any] = {}
    for key in FILTERS:
        value = source.get(key)
        if value is None or value == "":
            continue
        if key in ("since", "until"):
            filters[key] = number(value, key)
        elif key == "state":
            filters[key] = _state(text(value, key))
        elif key == "direction" and value not in ("mt", "mo"):
            raise APIError(400, f"direction must be 'mt' or 'mo', got {excerpt(value)}")
        else:
            filters[key] = text(value, key)
    return filters


class MessageRoutes:
    """
    The message resources of one simulator.

    :param simulator: whose cores are queried.
    :param waits: the API's open waits.
    """

    def __init__(self, simulator: Simulator, waits: Waits) -> None:
        self.simulator = simulator
        self.waits = waits

    def add_routes(self, api: JSONAPI, prefix: str) -> None:
        """Register the routes on ``api``."""
        api.add(prefix + "/messages", "GET", self.list)
        api.add(prefix + "/messages/{message_id}", "GET", self.one)
        api.add(prefix + "/messages/{message_id}/receipt", "POST", self.force_receipt)
        api.add(prefix + "/mo", "POST", self.inject_mo)
        api.add(prefix + "/wait/messages", "POST", self.wait_messages)
        api.add(prefix + "/wait/receipt", "POST", self.wait_receipt)
        api.add(prefix + "/wait/bind", "POST", self.wait_bind)

    # -- queries ----------------------------------------------------------------

    def query(self, filters: dict[str, Any], limit: int, offset: int) -> list[dict[str, Any]]:
        """One page of messages over every cluster, oldest submit first."""
        if "destination_prefix" in filters:
            return self.page(filters, limit, offset)[0]
        cores = list(self.simulator.cores.values())
        if len(cores) == 1:
            records = list(cores[0].messages(**filters, limit=limit, offset=offset))
            return [message_view(r) for r in records]
        merged: list[Any] = []
        for core in cores:
            merged.extend(core.messages(**filters, limit=offset + limit, offset=0))
        merged.sort(key=lambda r: (r.submit_time, r.number))
        return [message_view(r) for r in merged[offset : offset + limit]]

    def page(self, filters: dict[str, Any], limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """
        One page of messages over every cluster, oldest submit first, and how
        many match in all.  The matches are counted as they stream past (each
        store is already in submit order, so the clusters' streams are merged
        rather than sorted): memory holds the page, not every match.
        """
        query = MessageQuery(**{key: value for key, value in filters.items() if key != "destination_prefix"})
        prefix = filters.get("destination_prefix")
        streams: list[Iterable[Any]] = []
        for core in self.simulator.cores.values():
            found: Iterable[Any] = core.matching(query)
            if prefix is not None:
                # the store's query matches a destination exactly; a prefix is applied to its answer
                found = (r for r in found if str(r.destination_addr).startswith(prefix))
            streams.append(found)
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_submit_order)
        page: list[Any] = []
        total, end = 0, offset + limit
        for record in merged:
            if offset <= total < end:
                page.append(record)
            total += 1
        return [message_view(r) for r in page], total

    def find(self, message_id: str) -> Any:
        """The record of that id in any cluster, or None."""
        for core in self.simulator.cores.values():
            record = core.message(message_id)
            if record is not None:
                return record
        return None

    def list(self, call: Call) -> dict[str, Any]:
        """Messages matching the query's filters, a page at a time."""
        check_keys(call.query, FILTERS + ("limit", "offset"), "query")
        filters = parse_filters(dict(call.query))
        limit = int(number(call.query.get("limit", 100), "limit", 1, integer=True))
        offset = int(number(call.query.get("offset", 0), "offset", 0, integer=True))
        limit = min(limit, MAX_LIMIT)
        page, total = self.page(filters, limit, offset)
        return {
            "messages": page,
            "count": len(page),
            "total": total,
            "limit": limit,
            "offset": offset,
            "next_offset": offset + limit if offset + limit < total else None,
        }

    def one(self, call: Call) -> dict[str, Any]:
        """One message with its history, decoded and reassembled text and receipts."""
        record = self.find(call.params["message_id"])
        if record is None:
            raise APIError(404, f"no message {call.params['message_id']}")
        return message_view(record)

    # -- actions -----------------------------------------------------------------

    def inject_mo(self, call: Call) -> Deferred[JSONResponse] | JSONResponse:
        """Originate an MO message to a bound receiver of the account."""
        body = call.object_body()
        check_keys(body, MO_FIELDS)
        accounts = self.simulator.config.accounts
        account = text(body.get("account", accounts[0].system_id if accounts else ""), "account")
        if account not in {a.system_id for a in accounts}:
            raise APIError(404, f"no account {excerpt(account)}")
        for key in ("source", "destination"):
            if key not in body:
                raise APIError(400, f"{key} is required")
        if ("text" in body) == ("data_hex" in body):
            raise APIError(400, "give exactly one of 'text' and 'data_hex'")
        data_coding: int | None = None
        if body.get("data_coding") is not None:
            data_coding = int(number(body["data_coding"], "data_coding", 0, integer=True))
            if data_coding > 0xFF:
                raise APIError(400, f"data_coding must be 0..255, got {data_coding}")
        if body.get("encoding") is not None:
            encoding = text(body["encoding"], "encoding").lower()
            if encoding not in ENCODINGS:
                raise APIError(400, f"encoding must be one of {', '.join(ENCODINGS)}, got {excerpt(encoding)}")
            if data_coding is not None and data_coding != ENCODINGS[encoding]:
                raise APIError(400, "encoding and data_coding disagree; give one")
            data_coding = ENCODINGS[encoding]
        split = text(body.get("split", SplitMode.UDH8.value), "split")
        if split not in SPLIT_MODES:
            raise APIError(400, f"split must be one of {', '.join(SPLIT_MODES)}, got {excerpt(split)}")
        data: bytes | None = None
        if "data_hex" in body:
            try:
                data = bytes.fromhex(text(body["data_hex"], "data_hex"))
            except ValueError:
                raise APIError(400, "data_hex is not hexadecimal") from None
        instance = body.get("instance")
        if instance is not None and text(instance, "instance") not in self.simulator.instances:
            raise APIError(404, f"no instance {excerpt(instance)}")
        count = int(number(body.get("count", 1), "count", 1, integer=True))
        source, destination = text(body["source"], "source"), text(body["destination"], "destination")
        message = text(body["text"], "text") if "text" in body else None
        settings = next(a for a in accounts if a.system_id == account)
        try:
            # cut once before sending anything: a bad message or too much work is refused whole
            _, parts = mo_segments(message, data, data_coding, split, 0, settings.default_alphabet)
        except ValueError as e:
            raise APIError(400, str(e).strip("'\"")) from None
        records = count * len(parts)
        if records > MAX_MO_RECORDS:
            raise APIError(
                400,
                f"count x parts must be at most {MAX_MO_RECORDS} records a request (the MO record limit), got "
                f"{count} x {len(parts)} = {records}",
                limit=MAX_MO_RECORDS,
            )
        inject = functools.partial(
            self.simulator.inject_mo, account, source, destination, text=message, data_coding=data_coding,
            split=split, instance=instance, data=data,
        )  # fmt: skip
        return self._originate(inject, count)

    def _originate(self, inject: Callable[[], Sequence[str]], count: int) -> Deferred[JSONResponse] | JSONResponse:
        """
        Call ``inject`` ``count`` times, at most :data:`MO_RECORDS_PER_TURN`
        records a reactor turn, so that a large request never holds up SMPP
        traffic for long; the answer comes once every MO is out.
        """
        ids: list[str] = []
        left = [count]
        pending: list[IDelayedCall] = []

        def step() -> JSONResponse | None:
            made = 0
            try:
                while left[0] and made < MO_RECORDS_PER_TURN:
                    parts = inject()
                    ids.extend(parts)
                    made += len(parts)
                    left[0] -= 1
            except (ValueError, KeyError) as e:
                raise APIError(400, str(e).strip("'\""), message_ids=ids) from None
            except NoIdAvailable:
                # the cluster's id counter (cluster_store) is out of reach: try again once Redis answers
                raise APIError(
                    503, "no message id available: the cluster store does not answer", message_ids=ids
                ) from None
            return None if left[0] else JSONResponse(201, {"message_ids": ids})

        first = step()  # one turn at once: a small request answers without waiting for the reactor
        if first is not None:
            return first
        def cancel(_: Deferred[JSONResponse]) -> None:
            # the client left: stop originating
            for call in pending:
                if call.active():
                    call.cancel()

        done: Deferred[JSONResponse] = Deferred(cancel)

        def later() -> None:
            pending.clear()
            try:
                answer = step()
            except APIError as e:
                done.errback(e)
                return
            if answer is None:
                pending.append(self.simulator.clock.callLater(0, later))
            else:
                done.callback(answer)

        pending.append(self.simulator.clock.callLater(0, later))
        return done

    def force_receipt(self, call: Call) -> dict[str, Any]:
        """End a message now with a given receipt ``stat`` and ``err``."""
        message_id = call.params["message_id"]
        body = call.object_body()
        check_keys(body, ("stat", "err"))
        stat = text(body.get("stat", ""), "stat").upper()
        if stat not in STAT_STATE:
            raise APIError(400, f"stat must be one of {', '.join(STAT_STATE)}, got {excerpt(stat)}")
        err = None if body.get("err") is None else int(number(body["err"], "err", 0, integer=True))
        if err is not None and err > 999:
            # the receipt writes err: with three digits
            raise APIError(400, f"err must be 0..999, got {excerpt(err)}")
        for core in self.simulator.cores.values():
            record = core.message(message_id)
            if record is not None:
                if record.direction != "mt":
                    raise APIError(409, f"{message_id} is an MO message; only MT messages have receipts")
                try:
                    core.force_receipt(message_id, stat, err)
                except (KeyError, ValueError) as e:
                    raise APIError(400, str(e).strip("'\"")) from None
                return message_view(core.message(message_id))
        raise APIError(404, f"no message {message_id}")

    # -- waits ----------------------------------------------------------------------

    def _wait(self, call: Call, check: Callable[[], Any], kinds: frozenset[str], timeout: float) -> Deferred[Any]:
        try:
            waiting = self.waits.until(check, kinds, timeout)
        except TooManyWaits as e:
            raise APIError(503, str(e)) from None
        return waiting

    @staticmethod
    def _timeout(body: dict[str, Any]) -> float:
        return number(body.get("timeout", 10.0), "timeout", 0)

    def wait_messages(self, call: Call) -> Deferred[Any]:
        """Answer once ``count`` messages match the filters (existing ones count), or 408 at the timeout."""
        body = call.object_body()
        check_keys(body, FILTERS + ("count", "timeout"))
        filters = parse_filters(body)
        count = int(number(body.get("count", 1), "count", 1, integer=True))
        count = min(count, MAX_LIMIT)
        timeout = self._timeout(body)

        def check() -> list[dict[str, Any]] | None:
            found = self.query(filters, count, 0)
            return found if len(found) >= count else None

        def answer(found: list[dict[str, Any]] | None) -> dict[str, Any]:
            if found is None:
                matched = self.query(filters, count, 0)
                raise APIError(
                    408, f"{len(matched)} of {count} messages matched within {timeout:g} s", messages=matched
                )
            return {"messages": found}

        kinds = frozenset({"message", "delivery", "pdu_in", "pdu_out"})
        return self._wait(call, check, kinds, timeout).addCallback(answer)

    def wait_receipt(self, call: Call) -> Deferred[Any]:
        """Answer once a (final) receipt of the message reached an end (by default: acknowledged)."""
        body = call.object_body()
        check_keys(body, ("message_id", "outcome", "timeout"))
        if "message_id" not in body:
            raise APIError(400, "message_id is required")
        message_id = text(body["message_id"], "message_id")
        outcome = text(body.get("outcome", DeliveryOutcome.ACKED.value), "outcome")
        if outcome not in DELIVERY_OUTCOMES + ("any",):
            raise APIError(
                400, f"outcome must be one of {', '.join(DELIVERY_OUTCOMES + ('any',))}, got {excerpt(outcome)}"
            )
        timeout = self._timeout(body)

        def check() -> dict[str, Any] | None:
            record = self.find(message_id)
            if record is None:
                return None
            view = message_view(record)
            for receipt in view.get("receipts") or ():
                if receipt.get("intermediate"):
                    continue
                done = receipt.get("outcome")
                if done == outcome or (outcome == "any" and done in DELIVERY_OUTCOMES):
                    return {"message": view, "receipt": receipt}
            return None

        def answer(found: dict[str, Any] | None) -> dict[str, Any]:
            if found is None:
                record = self.find(message_id)
                raise APIError(
                    408,
                    f"no receipt of {message_id} was {outcome} within {timeout:g} s",
                    record=message_view(record) if record is not None else None,
                )
            return found

        return self._wait(call, check, frozenset({"message", "delivery"}), timeout).addCallback(answer)

    def wait_bind(self, call: Call) -> Deferred[Any]:
        """Answer once ``count`` sessions matching account/instance/bind_type are bound."""
        body = call.object_body()
        check_keys(body, ("account", "instance", "bind_type", "count", "timeout"))
        count = int(number(body.get("count", 1), "count", 1, integer=True))
        keys = ("account", "instance", "bind_type")
        wanted = {key: text(body[key], key) for key in keys if body.get(key) is not None}
        timeout = self._timeout(body)

        def bound() -> list[dict[str, Any]]:
            views = [
                session_view(s)
                for instance in self.simulator.instances.values()
                for s in list(instance.sessions.values())
                if s.state.value.startswith("BOUND")
            ]
            return [v for v in views if all(str(v[k]).lower() == w.lower() for k, w in wanted.items())]

        def check() -> list[dict[str, Any]] | None:
            found = bound()
            return found if len(found) >= count else None

        def answer(found: list[dict[str, Any]] | None) -> dict[str, Any]:
            if found is None:
                raise APIError(408, f"{len(bound())} of {count} binds within {timeout:g} s", sessions=bound())
            return {"sessions": found}

        kinds = frozenset({"pdu_out", "unbind", "session_closed", "bind"})
        return self._wait(call, check, kinds, timeout).addCallback(answer)
