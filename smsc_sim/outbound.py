"""
The requests the SMSC sends on one session: deliver_sm and data_sm
(receipts, MO), enquire_link and unbind.

:class:`OutboundRequests` keeps the SMSC side's sequence numbers, the window
of requests written and unanswered, the bounded queue behind it, and one
lazy response timer for all of them: it fires at the earliest deadline,
fails what is overdue and re-arms for the oldest left, so that writing a
request or reading its response never touches a timer unless the new
deadline comes first.

Mechanics only.  The session says whether it may send now (bound to
receive, not closing), writes what it is given, and decides what an
unanswered enquire_link or unbind means for the connection.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from smsc_sim.contracts import DeliveryFailed, DeliveryWaiter
from smsc_sim.modes import DeliveryFailure
from smsc_sim.smpp.codec import build_pdu
from smsc_sim.smpp.pdu import PDU

if TYPE_CHECKING:
    from smsc_sim.config import SessionSettings

__all__ = ["DeliveryWaiter", "OutboundRequests"]


class OutboundRequests:
    """
    The SMSC's requests on one session, their window and their deadlines.

    :param clock: where deadlines are kept.
    :param settings: ``response_timeout`` and ``outbound_queue_limit``.
    :param window: how many requests may be written and unanswered now (the
        scenario may change it while the session runs).
    :param write: writes one request to the ESME.
    :param may_send: whether a request may be written now; the queue waits otherwise.
    :param expired: told of each request whose deadline passed unanswered,
        before its waiter fails with ``timeout``.
    """

    def __init__(
        self,
        clock: IReactorTime,
        settings: SessionSettings,
        window: Callable[[], int],
        write: Callable[[PDU], None],
        may_send: Callable[[], bool],
        expired: Callable[[PDU], None],
    ) -> None:
        self._clock = clock
        self._settings = settings
        self._window = window
        self._write = write
        self._may_send = may_send
        self._expired = expired
        self._next_sequence = 1
        #: written and unanswered: sequence -> (deadline, waiter, request)
        self._inflight: OrderedDict[int, tuple[float, DeliveryWaiter, PDU]] = OrderedDict()
        #: waiting behind the window, in order
        self._queue: deque[tuple[PDU, DeliveryWaiter]] = deque()
        self._timer: IDelayedCall | None = None

    def __len__(self) -> int:
        """Requests written and unanswered plus those waiting behind the window."""
        return len(self._inflight) + len(self._queue)

    def deliver(self, pdu: PDU, waiter: DeliveryWaiter) -> None:
        """
        Write a deliver_sm or data_sm within the window, or queue it behind;
        beyond the queue's limit its waiter fails with ``queue_full``.
        """
        if len(self._inflight) < self._window():
            self.send(pdu, waiter)
        elif len(self._queue) < self._settings.outbound_queue_limit:
            self._queue.append((pdu, waiter))
        else:
            waiter.errback(DeliveryFailed(DeliveryFailure.QUEUE_FULL))

    def send(self, pdu: PDU, waiter: DeliveryWaiter, timeout: float | None = None) -> int:
        """
        Write a request now, whatever the window (enquire_link and unbind do not wait).

        :param timeout: seconds to wait for its response; ``None``: the
            settings' ``response_timeout``; 0: no deadline.
        :returns: the sequence number it was given.
        """
        sequence = self._next_sequence
        self._next_sequence = 1 if sequence >= 0x7FFFFFFF else sequence + 1
        outgoing = build_pdu(pdu.command_id, sequence, 0, pdu.params, pdu.tlvs)
        if timeout is None:
            timeout = self._settings.response_timeout
        now = self._clock.seconds()
        self._inflight[sequence] = (now + timeout, waiter, outgoing)
        self._write(outgoing)
        if timeout > 0:
            self._arm(now, now + timeout)
        return sequence

    def send_unanswered(self, pdu: PDU) -> int:
        """
        Write a request that has no response PDU (outbind, alert_notification)
        with the next sequence number; nothing waits for an answer.

        :returns: the sequence number it was given.
        """
        sequence = self._next_sequence
        self._next_sequence = 1 if sequence >= 0x7FFFFFFF else sequence + 1
        self._write(build_pdu(pdu.command_id, sequence, 0, pdu.params, pdu.tlvs))
        return sequence

    def answered(self, response: PDU) -> PDU | None:
        """
        The ESME answered: hand the response to its request's waiter, then
        write what the window has room for.

        :returns: the request it answers; ``None`` for an unknown sequence number.
        """
        entry = self._inflight.pop(response.sequence_number, None)
        if entry is None:
            return None
        _, waiter, request = entry
        waiter.callback(response)
        if self._queue:
            self._pump()
        return request

    def fail_all(self) -> None:
        """The connection is gone: every request written or queued fails with ``closed``."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        inflight = list(self._inflight.values())
        self._inflight.clear()
        queued = list(self._queue)
        self._queue.clear()
        for _, waiter, _ in inflight:
            waiter.errback(DeliveryFailed(DeliveryFailure.CLOSED))
        for _, waiter in queued:
            waiter.errback(DeliveryFailed(DeliveryFailure.CLOSED))

    def _pump(self) -> None:
        window = self._window()
        while self._queue and len(self._inflight) < window and self._may_send():
            pdu, waiter = self._queue.popleft()
            self.send(pdu, waiter)

    def _arm(self, now: float, deadline: float) -> None:
        """Make sure the response timer fires no later than ``deadline``."""
        timer = self._timer
        if timer is not None:
            if timer.getTime() <= deadline:
                return
            timer.cancel()
        self._timer = self._clock.callLater(max(0.0, deadline - now), self._deadline)

    def _deadline(self) -> None:
        """Fail every request past its deadline; re-arm for the oldest left."""
        self._timer = None
        now = self._clock.seconds()
        overdue = [sequence for sequence, entry in self._inflight.items() if entry[0] <= now]
        expired = [self._inflight.pop(sequence) for sequence in overdue]
        for _, waiter, request in expired:
            self._expired(request)
            waiter.errback(DeliveryFailed(DeliveryFailure.TIMEOUT))
        if self._inflight:
            self._arm(now, min(entry[0] for entry in self._inflight.values()))
        self._pump()
