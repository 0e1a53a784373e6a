"""
outbind: the SMSC opens the session (SMPP 3.4 sections 2.2.1 and 4.1.7).

For an account with ``outbind:`` configured, the SMSC connects to the
ESME's endpoint, sends outbind (system_id, password) and waits for the ESME
to send bind_receiver on that same connection; from then on the connection
is an ordinary SMSC-side session (:class:`~smsc_sim.session.SMPPSession`)
of the configured instance, and the account's pending receipts and MO
messages flow to it as to any receiver.

When it connects:

``when: always``
    at start, and again after the session ends;
``when: pending``
    when a delivery for the account is queued in the instance's cluster and
    the account has no receiver bound there, and again after the session
    ends while deliveries still wait;
``POST /api/v1/accounts/{id}/outbind``
    whenever asked (:meth:`Outbinder.trigger`).

Every attempt is bounded: the connect has :attr:`Outbinder.connect_timeout`,
the ESME then has the session's ``session_init_timeout`` to bind (the
session's own timer closes the connection otherwise), and a close that the
ESME does not complete is reset after ``close_timeout``.  A failed attempt
(refused, timed out, or closed before a bind) is retried after a backoff of
:attr:`Outbinder.backoff_first` seconds, doubled each time up to
:attr:`Outbinder.backoff_max`; after :attr:`Outbinder.max_attempts` failures
in a row the link gives up until it is triggered again.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from smsc_sim.config import AccountSettings, OutbindSettings
from smsc_sim.contracts import Event, ISession
from smsc_sim.events import EventBus
from smsc_sim.smpp.constants import CommandId
from smsc_sim.smpp.pdu import make_pdu

__all__ = ["Outbinder", "OutbindLink", "OutbindError"]

#: connects ``factory`` to a client endpoint description; fires with the protocol once connected
Connect = Callable[[str, Factory], "Deferred[Protocol]"]


class OutbindError(ValueError):
    """An outbind that cannot be asked for (unknown account, none configured)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        #: the HTTP status that answers it
        self.code = code


class OutbindLink:
    """
    The outbind state of one account.

    ``state`` is one of ``idle``, ``connecting`` (TCP connect under way),
    ``waiting-bind`` (outbind sent, no bind yet), ``bound``, ``retrying``
    (a backoff timer runs) or ``failed`` (gave up after ``max_attempts``).
    """

    def __init__(self, account: AccountSettings, settings: OutbindSettings, instance: str) -> None:
        self.account = account
        self.settings = settings
        self.instance = instance
        self.state = "idle"
        #: failed attempts in a row
        self.failures = 0
        #: attempts made since start
        self.attempts = 0
        self.session: ISession | None = None
        self.connecting: Deferred[Protocol] | None = None
        self.retry: IDelayedCall | None = None
        self.last_error = ""

    def describe(self) -> dict[str, Any]:
        """A JSON-able view for the API."""
        return {
            "account": self.account.system_id,
            "endpoint": self.settings.endpoint,
            "when": self.settings.when,
            "instance": self.instance,
            "state": self.state,
            "attempts": self.attempts,
            "failures": self.failures,
            "session_id": None if self.session is None else self.session.session_id,
            "last_error": self.last_error or None,
        }


class _SessionFactory(Factory):
    """Builds the SMSC-side session for one outbind connection."""

    def __init__(self, build: Callable[[], Protocol]) -> None:
        self._build = build

    def buildProtocol(self, addr: Any) -> Protocol:
        return self._build()


def endpoint_connect(reactor: Any) -> Connect:
    """The default :data:`Connect`: ``clientFromString(reactor, description).connect(factory)``."""
    from twisted.internet.endpoints import clientFromString

    def connect(description: str, factory: Factory) -> Deferred[Protocol]:
        result: Deferred[Protocol] = clientFromString(reactor, description).connect(factory)
        return result

    return connect


class Outbinder:
    """
    The outbind links of every account that has ``outbind:``.

    :param clock: the clock of the timeouts and backoffs.
    :param accounts: the configured accounts (those without ``outbind`` are ignored).
    :param events: where binds, closes and queued deliveries are heard.
    :param connect: connects a factory to a client endpoint description.
    :param session_for: builds a new SMSC-side session on the named instance.
    :param has_pending: whether the named instance's cluster holds deliveries for an account.
    :param has_receiver: whether the account has a receiver bound in the named instance's cluster.
    :param default_instance: the instance of links that name none.
    """

    log = Logger()

    #: seconds a TCP connect to the ESME may take
    connect_timeout = 10.0
    #: first retry after a failed attempt, in seconds; doubled each time
    backoff_first = 1.0
    #: the longest wait between attempts
    backoff_max = 60.0
    #: failed attempts in a row after which a link gives up until triggered again
    max_attempts = 8

    def __init__(
        self,
        clock: IReactorTime,
        accounts: tuple[AccountSettings, ...],
        events: EventBus,
        connect: Connect,
        session_for: Callable[[str], Protocol],
        has_pending: Callable[[str, str], bool],
        has_receiver: Callable[[str, str], bool],
        default_instance: str,
    ) -> None:
        self.clock = clock
        self.events = events
        self._connect = connect
        self._session_for = session_for
        self._has_pending = has_pending
        self._has_receiver = has_receiver
        self.links: dict[str, OutbindLink] = {
            account.system_id: OutbindLink(account, account.outbind, account.outbind.instance or default_instance)
            for account in accounts
            if account.outbind is not None
        }
        self._unsubscribe: Callable[[], None] | None = None
        self.running = False

    # ------------------------------------------------------------------
    # lifecycle
    # ------------------------------------------------------------------

    def start(self) -> None:
        """Listen for queued deliveries, binds and closes; connect the ``always`` links."""
        if self.running or not self.links:
            return
        self.running = True
        self._unsubscribe = self.events.subscribe(self._event, kinds=("delivery", "bind", "session_closed"))
        for link in self.links.values():
            if link.settings.when == "always":
                self._attempt(link)

    def stop(self) -> None:
        """Cancel every backoff and connect under way; sessions are ended by the simulator's shutdown."""
        self.running = False
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for link in self.links.values():
            self._cancel_retry(link)
            connecting, link.connecting = link.connecting, None
            if connecting is not None:
                connecting.cancel()

    # ------------------------------------------------------------------
    # what the API asks
    # ------------------------------------------------------------------

    def link(self, system_id: str) -> OutbindLink:
        """The link of an account, or :class:`OutbindError` (404 unknown account, 409 no outbind)."""
        link = self.links.get(system_id)
        if link is None:
            raise OutbindError(409, f"account {system_id!r} has no outbind configured")
        return link

    def trigger(self, system_id: str) -> dict[str, Any]:
        """
        Connect now unless the link is connecting or connected already; a
        backoff under way is cut short and the failure count starts again.

        :returns: the link's view after the decision.
        """
        link = self.link(system_id)
        if not self.running:
            raise OutbindError(503, "the simulator is not running")
        if link.state in ("idle", "retrying", "failed"):
            self._cancel_retry(link)
            link.failures = 0
            self._attempt(link)
        return link.describe()

    # ------------------------------------------------------------------
    # attempts
    # ------------------------------------------------------------------

    def _attempt(self, link: OutbindLink) -> None:
        """One connect to the ESME, bounded by :attr:`connect_timeout`."""
        if not self.running:
            return
        link.state = "connecting"
        link.attempts += 1
        self.log.info(
            "outbind {account}: connecting to {endpoint} (attempt {attempt})",
            account=link.account.system_id,
            endpoint=link.settings.endpoint,
            attempt=link.attempts,
        )
        factory = _SessionFactory(lambda: self._session_for(link.instance))
        try:
            connecting = self._connect(link.settings.endpoint, factory)
        except Exception as e:  # a description the loader accepted but the reactor cannot use
            self._failed(link, f"cannot connect: {e}")
            return
        link.connecting = connecting
        connecting.addTimeout(self.connect_timeout, self.clock)
        connecting.addCallbacks(lambda session: self._connected(link, session), lambda f: self._connect_failed(link, f))

    def _connected(self, link: OutbindLink, session: Any) -> None:
        link.connecting = None
        if not self.running:
            session.transport.loseConnection()
            return
        link.session = session
        link.state = "waiting-bind"
        outbind = make_pdu(
            CommandId.outbind,
            0,
            system_id=link.settings.system_id or link.account.system_id,
            password=link.settings.password or link.account.password,
        )
        session.send_unanswered(outbind)
        self.log.info(
            "outbind {account}: sent to {endpoint}, session {session_id}",
            account=link.account.system_id,
            endpoint=link.settings.endpoint,
            session_id=session.session_id,
        )

    def _connect_failed(self, link: OutbindLink, failure: Failure) -> None:
        link.connecting = None
        if not self.running:
            return
        self._failed(link, f"connect failed: {failure.getErrorMessage() or failure.type.__name__}")

    def _failed(self, link: OutbindLink, why: str) -> None:
        """An attempt failed: back off, or give up after :attr:`max_attempts` in a row."""
        link.failures += 1
        link.last_error = why
        link.session = None
        if link.failures >= self.max_attempts:
            link.state = "failed"
            self.log.warn(
                "outbind {account}: giving up after {failures} failed attempts ({why})",
                account=link.account.system_id,
                failures=link.failures,
                why=why,
            )
            return
        delay = min(self.backoff_first * 2 ** (link.failures - 1), self.backoff_max)
        self.log.info(
            "outbind {account}: {why}; retry in {delay} s", account=link.account.system_id, why=why, delay=delay
        )
        self._schedule(link, delay)

    def _schedule(self, link: OutbindLink, delay: float) -> None:
        self._cancel_retry(link)
        link.state = "retrying"

        def again() -> None:
            link.retry = None
            self._attempt(link)

        link.retry = self.clock.callLater(delay, again)

    def _cancel_retry(self, link: OutbindLink) -> None:
        if link.retry is not None and link.retry.active():
            link.retry.cancel()
        link.retry = None

    # ------------------------------------------------------------------
    # what the events say
    # ------------------------------------------------------------------

    def _event(self, event: Event) -> None:
        data = event.data
        if event.kind == "delivery":
            if data.get("outcome") == "queued":
                self._queued(data.get("account", ""))
            return
        session_id = data.get("session_id")
        for link in self.links.values():
            if link.session is not None and link.session.session_id == session_id:
                if event.kind == "bind":
                    link.state = "bound"
                    link.failures = 0
                    link.last_error = ""
                else:
                    self._closed(link)
                return

    def _queued(self, system_id: str) -> None:
        """A delivery for the account waits: a ``pending`` link with nothing under way connects."""
        link = self.links.get(system_id)
        if link is None or link.settings.when != "pending" or link.state != "idle":
            return
        if self._has_pending(link.instance, system_id) and not self._has_receiver(link.instance, system_id):
            self._attempt(link)

    def _closed(self, link: OutbindLink) -> None:
        """The outbind session ended: a failure if it never bound, and again when the link still has work."""
        was_bound = link.state == "bound"
        link.session = None
        if not self.running:
            link.state = "idle"
            return
        if not was_bound:
            self._failed(link, "closed before a bind")
            return
        link.state = "idle"
        wanted = link.settings.when == "always" or (
            self._has_pending(link.instance, link.account.system_id)
            and not self._has_receiver(link.instance, link.account.system_id)
        )
        if wanted:
            # not at once: an ESME that binds and drops straight away must not make a tight loop
            self._schedule(link, self.backoff_first)
