"""
Python clients of the control API.

:class:`SMSCClient` is asynchronous, on treq (every method returns a
Deferred; ``http`` may be a ``treq.testing.StubTreq`` for in-memory tests).
:class:`SyncSMSCClient` is the same set of methods, blocking, on the
standard library alone: it needs no reactor, so it serves smpplib and
asyncio test suites.

Both raise :class:`APIRequestError` for an error answer, and
:class:`WaitTimeout` (a subclass) when a wait runs out of time.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from twisted.internet.defer import Deferred


class APIRequestError(Exception):
    """
    The API answered with an error.

    :ivar status: the HTTP status.
    :ivar message: the API's explanation.
    :ivar body: the whole decoded answer (``{"error": {...}}``).
    """

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body

    @property
    def details(self) -> dict[str, Any]:
        """The error object's fields (``messages`` matched so far for a wait, ``line`` for a scenario error...)."""
        error = self.body.get("error") if isinstance(self.body, dict) else None
        return error if isinstance(error, dict) else {}


class WaitTimeout(APIRequestError, AssertionError):
    """
    A wait ended without its condition (HTTP 408).  It is an
    ``AssertionError`` so pytest shows it as a failed expectation.
    """


@dataclass(frozen=True)
class _Request:
    method: str
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None
    extract: Callable[[Any], Any] = lambda body: body
    #: seconds the call may take beyond the usual (the wait's own timeout)
    wait: float = 0.0


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _error(status: int, raw: bytes) -> APIRequestError:
    try:
        body = json.loads(raw)
        message = body["error"]["message"]
    except (ValueError, KeyError, TypeError):
        body, message = None, raw.decode("utf-8", "replace")[:500]
    kind = WaitTimeout if status == 408 else APIRequestError
    return kind(status, message, body)


class _Calls:
    """The API's operations, each built as a request; subclasses send them."""

    def _call(self, request: _Request) -> Any:
        raise NotImplementedError

    # health and instances
    def live(self) -> Any:
        """``GET /health/live``."""
        return self._call(_Request("GET", "/health/live"))

    def ready(self) -> Any:
        """``GET /health/ready``: True when every listener that should be open is."""
        return self._call(_Request("GET", "/health/ready", extract=lambda body: bool(body.get("ready"))))

    def info(self) -> Any:
        """``GET /api/v1``: version, seed, endpoints, accounts."""
        return self._call(_Request("GET", ""))

    def instances(self) -> Any:
        """Every instance with its state."""
        return self._call(_Request("GET", "/instances", extract=lambda body: body["instances"]))

    def instance(self, name: str) -> Any:
        """One instance."""
        return self._call(_Request("GET", f"/instances/{_quote(name)}"))

    def start_outage(
        self,
        instance: str,
        mode: str,
        duration: float | None = None,
        status: int | str | None = None,
        latency: float | None = None,
    ) -> Any:
        """Start an outage (modes: graceful, crash, blackhole, bind-hang, reject-binds, slow)."""
        body = _clean({"mode": mode, "duration": duration, "status": status, "latency": latency})
        return self._call(_Request("POST", f"/instances/{_quote(instance)}/outage", body=body))

    def end_outage(self, instance: str) -> Any:
        """End an instance's outage."""
        return self._call(_Request("DELETE", f"/instances/{_quote(instance)}/outage"))

    # sessions
    def sessions(self, **filters: Any) -> Any:
        """Open sessions (filters: account, instance, bind_type, state)."""
        return self._call(_Request("GET", "/sessions", query=_clean(filters), extract=lambda body: body["sessions"]))

    def session(self, session_id: int) -> Any:
        """One open session."""
        return self._call(_Request("GET", f"/sessions/{session_id}"))

    def end_session(self, session_id: int, how: str = "unbind") -> Any:
        """End a session with an unbind (``how="unbind"``) or a TCP reset (``how="reset"``)."""
        return self._call(_Request("DELETE", f"/sessions/{session_id}", query={"how": how}))

    # messages
    def messages(self, limit: int = 100, offset: int = 0, **filters: Any) -> Any:
        """
        Messages, oldest first.  Filters: account, instance, source,
        destination, state, since, until, text, direction.
        """
        query = _clean({**filters, "limit": limit, "offset": offset})
        return self._call(_Request("GET", "/messages", query=query, extract=lambda body: body["messages"]))

    def submits(self, limit: int = 100, offset: int = 0, **filters: Any) -> Any:
        """
        Every submit the ESMEs sent (submit_sm, data_sm, submit_multi), accepted
        or refused, with the status each got, oldest first.  Filters: account,
        status (a name such as ``ESME_RTHROTTLED`` or a number), destination.
        """
        query = _clean({**filters, "limit": limit, "offset": offset})
        return self._call(_Request("GET", "/submits", query=query, extract=lambda body: body["submits"]))

    def message(self, message_id: str) -> Any:
        """One message with its history, text, reassembled text and receipts."""
        return self._call(_Request("GET", f"/messages/{_quote(message_id)}"))

    def force_receipt(self, message_id: str, stat: str, err: int | None = None) -> Any:
        """End a message now with receipt ``stat`` (DELIVRD, UNDELIV...) and ``err``."""
        body = _clean({"stat": stat, "err": err})
        return self._call(_Request("POST", f"/messages/{_quote(message_id)}/receipt", body=body))

    def inject_mo(
        self,
        source: str,
        destination: str,
        text: str | None = None,
        *,
        account: str | None = None,
        encoding: str | None = None,
        data_coding: int | None = None,
        split: str | None = None,
        instance: str | None = None,
        data: bytes | None = None,
    ) -> Any:
        """Originate an MO message; returns the message ids of its parts."""
        body = _clean(
            {
                "source": source,
                "destination": destination,
                "text": text,
                "account": account,
                "encoding": encoding,
                "data_coding": data_coding,
                "split": split,
                "instance": instance,
                "data_hex": data.hex() if data is not None else None,
            }
        )
        return self._call(_Request("POST", "/mo", body=body, extract=lambda body: body["message_ids"]))

    # waits
    def wait_for_messages(self, count: int = 1, timeout: float = 10.0, **filters: Any) -> Any:
        """The first ``count`` messages matching the filters, once there are that many; :class:`WaitTimeout` else."""
        body = _clean({**filters, "count": count, "timeout": timeout})
        request = _Request("POST", "/wait/messages", body=body, extract=lambda body: body["messages"], wait=timeout)
        return self._call(request)

    def wait_for_receipt(self, message_id: str, outcome: str = "acked", timeout: float = 10.0) -> Any:
        """``{"message": ..., "receipt": ...}`` once the message's final receipt reached ``outcome``."""
        body = {"message_id": message_id, "outcome": outcome, "timeout": timeout}
        return self._call(_Request("POST", "/wait/receipt", body=body, wait=timeout))

    def wait_for_bind(
        self,
        account: str | None = None,
        instance: str | None = None,
        bind_type: str | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> Any:
        """The bound sessions matching, once there are ``count`` of them."""
        body = _clean(
            {"account": account, "instance": instance, "bind_type": bind_type, "count": count, "timeout": timeout}
        )
        request = _Request("POST", "/wait/bind", body=body, extract=lambda body: body["sessions"], wait=timeout)
        return self._call(request)

    # scenario, reset, stats, metrics
    def scenario(self) -> Any:
        """The active scenario's summary."""
        return self._call(_Request("GET", "/scenario", extract=lambda body: body["scenario"]))

    def scenarios(self) -> Any:
        """The names of the shipped scenarios."""
        return self._call(_Request("GET", "/scenarios", extract=lambda body: body["scenarios"]))

    def load_scenario(self, name: str | None = None, *, yaml: str | None = None) -> Any:
        """Switch scenario, by shipped name or path, or by YAML text."""
        body = _clean({"name": name, "yaml": yaml})
        return self._call(_Request("PUT", "/scenario", body=body, extract=lambda body: body["scenario"]))

    def reset(self, outages: bool = True, scenario: bool = True, sessions: bool = False) -> Any:
        """
        Forget messages, counters, the judge's findings and the trace ring; end outages and reload the
        configured scenario unless told not to.
        """
        body = {"outages": outages, "scenario": scenario, "sessions": sessions}
        return self._call(_Request("POST", "/reset", body=body))

    def stats(self) -> Any:
        """Every cluster's counters."""
        return self._call(_Request("GET", "/stats", extract=lambda body: body["clusters"]))

    def metrics(self) -> Any:
        """The Prometheus exposition, as text."""
        return self._call(_Request("GET", "/metrics", extract=lambda body: body))

    # the judge (docs/conformance.md)
    def conformance(self, **filters: Any) -> Any:
        """
        The judge's summary: ``verdict``, ``counts``, ``severities``, ``dropped``,
        ``findings`` (filters: account, session_id, severity, since).
        """
        return self._call(_Request("GET", "/conformance", query=_clean(filters)))

    def conformance_report(self, format: str = "junit", **filters: Any) -> Any:
        """The judge's report as text: ``junit`` (XML) or ``markdown``."""
        return self._call(_Request("GET", "/conformance", query=_clean({**filters, "format": format})))

    def reset_conformance(self) -> Any:
        """Forget the judge's findings (``reset()`` does it too)."""
        return self._call(_Request("POST", "/conformance/reset", body={}))

    def assert_conformant(self, allow: Iterable[str] = (), fail_on: str = "warning", **filters: Any) -> Any:
        """
        Raise ``AssertionError`` listing each finding, one readable line each, unless the ESME is conformant.

        :param allow: codes that never fail, e.g. ``["single-instance"]``.
        :param fail_on: ``warning`` (errors and warnings fail; info never) or ``error``.
        :param filters: as for :meth:`conformance` (``account="esme1"``...).
        :raises ValueError: at once for an unknown code in ``allow`` or a bad ``fail_on``.
        """
        from smsc_sim.conformance.query import assertion_failure, check_allow, check_fail_on

        allowed = check_allow(allow)
        check_fail_on(fail_on)  # a mistake raises before anything is asked

        def judge(summary: Any) -> Any:
            message = assertion_failure(summary, allowed, fail_on)
            if message is not None:
                raise AssertionError(message)
            return summary

        return self._call(_Request("GET", "/conformance", query=_clean(filters), extract=judge))


def _quote(part: str) -> str:
    return urllib.parse.quote(str(part), safe="")


class SMSCClient(_Calls):
    """
    The asynchronous client: every method returns a Deferred.

    :param base_url: the API's root, e.g. ``http://127.0.0.1:8775`` (``/api/v1`` is added).
    :param token: the bearer token, if the API wants one.
    :param http: a treq ``HTTPClient`` or ``StubTreq``; the ``treq`` module when not given.
    """

    def __init__(self, base_url: str, token: str | None = None, http: Any = None) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.token = token
        if http is None:
            import treq

            http = treq
        self.http = http

    def _call(self, request: _Request) -> Deferred[Any]:
        import treq

        headers = {"Accept": ["application/json"]}
        if self.token:
            headers["Authorization"] = [f"Bearer {self.token}"]
        kwargs: dict[str, Any] = {"headers": headers}
        if request.query:
            kwargs["params"] = {key: str(value) for key, value in request.query.items()}
        if request.body is not None:
            kwargs["data"] = json.dumps(request.body).encode("utf-8")
            headers["Content-Type"] = ["application/json"]
        answer: Deferred[Any] = self.http.request(request.method, self.base_url + request.path, **kwargs)

        def read(response: Any) -> Deferred[Any]:
            return treq.content(response).addCallback(lambda raw: (response.code, response.headers, raw))

        def decode(result: tuple[int, Any, bytes]) -> Any:
            code, headers, raw = result
            if code >= 400 and not (request.path == "/health/ready" and code == 503):
                raise _error(code, raw)
            content_type = (headers.getRawHeaders("content-type") or [""])[0]
            if content_type.startswith("application/json"):
                return request.extract(json.loads(raw))
            return request.extract(raw.decode("utf-8"))

        return answer.addCallback(read).addCallback(decode)


class SyncSMSCClient(_Calls):
    """
    The blocking client (standard library only, no reactor).

    :param base_url: the API's root, e.g. ``http://127.0.0.1:8775``.
    :param token: the bearer token, if the API wants one.
    :param timeout: seconds any call may take, on top of a wait's own timeout.
    """

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/") + "/api/v1"
        self.token = token
        self.timeout = timeout

    def _call(self, request: _Request) -> Any:
        url = self.base_url + request.path
        if request.query:
            url += "?" + urllib.parse.urlencode({key: str(value) for key, value in request.query.items()})
        data = json.dumps(request.body).encode("utf-8") if request.body is not None else None
        prepared = urllib.request.Request(url, data=data, method=request.method)
        prepared.add_header("Accept", "application/json")
        if data is not None:
            prepared.add_header("Content-Type", "application/json")
        if self.token:
            prepared.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(prepared, timeout=self.timeout + request.wait) as response:
                raw = response.read()
                content_type = response.headers.get("content-type", "")
        except urllib.error.HTTPError as e:
            raw = e.read()
            if not (request.path == "/health/ready" and e.code == 503):
                raise _error(e.code, raw) from None
            content_type = e.headers.get("content-type", "")
        if content_type.startswith("application/json"):
            return request.extract(json.loads(raw))
        return request.extract(raw.decode("utf-8"))
