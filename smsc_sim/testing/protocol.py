"""
The one client API every form of the simulator offers to a test.

A test is written against :class:`SimulatorForm`; which form runs it is the
suite's choice (``--smsc-sim-mode``), not the test's:

==================  ============================  ==========================================
form                ESME it suits                 what a member returns
==================  ============================  ==========================================
SimulatorProcess    any (smpplib, asyncio...)     the value (blocking)
ThreadedSimulator   any, in the same process      the value (blocking)
InProcessSimulator  Twisted, on the test's        a Deferred of the value
                    running reactor
MemorySMSC          Twisted protocols, in         the value; the waits (and the outages) a
                    memory with a fake clock      Deferred that fires as the clock advances
==================  ============================  ==========================================

(:class:`~smsc_sim.testing.harness.SimulatorProcess`,
:class:`~smsc_sim.testing.harness.ThreadedSimulator`,
:class:`~smsc_sim.testing.harness.InProcessSimulator`,
:class:`~smsc_sim.testing.memory.MemorySMSC`.)

Every form is made with the same options, each honoured or refused with a
:class:`FormOptionError` naming it: ``config`` (a YAML path, or a
:class:`~smsc_sim.config.Config` for the forms in this process),
``scenario`` (a shipped name or a path), ``accounts`` (``[(system_id,
password)]`` replacing the configured ones), ``seed`` and ``token`` (the API's
bearer token).  The error answers are the same too: an API refusal is an
:class:`~smsc_sim.testing.client.APIRequestError`, a wait that runs out a
:class:`~smsc_sim.testing.client.WaitTimeout` (an ``AssertionError``).
"""

from __future__ import annotations

from typing import Any, Iterable, Protocol, runtime_checkable

__all__ = ["FORM_OPTIONS", "FormOptionError", "SimulatorForm", "check_options"]

#: the options every form takes
FORM_OPTIONS = ("config", "scenario", "accounts", "seed", "token")


class FormOptionError(TypeError):
    """A form was given an option it cannot honour; the message says which and what to use instead."""


def check_options(form: str, options: dict[str, Any], extra: Iterable[str] = ()) -> None:
    """
    Refuse, naming them, the options ``form`` does not know.

    :param form: the form's name, for the message.
    :param options: the keyword arguments given.
    :param extra: options this form takes beyond :data:`FORM_OPTIONS`.
    :raises FormOptionError: for any other option.
    """
    known = set(FORM_OPTIONS) | set(extra)
    unknown = sorted(set(options) - known)
    if unknown:
        hint = " ('args' are twistd command-line options: only the subprocess form has a command line)" if (
            "args" in unknown
        ) else ""
        raise FormOptionError(
            f"the {form} form does not take {', '.join(map(repr, unknown))}; it takes "
            f"{', '.join(sorted(known))}{hint}"
        )


@runtime_checkable
class SimulatorForm(Protocol):
    """
    A started simulator and the client of its API, whatever form it runs in.

    Addresses and credentials are plain values in every form; the other
    members return what the table in :mod:`smsc_sim.testing.protocol` says.
    """

    #: ``(system_id, password)`` of every account, the first one being the default
    accounts: list[tuple[str, str]]

    @property
    def system_id(self) -> str:
        """The first account's system_id."""

    @property
    def password(self) -> str:
        """The first account's password."""

    @property
    def host(self) -> str:
        """The host every listener is on."""

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listens: ``{"SMPP1": [("127.0.0.1", 40123)]}``."""

    def address(self, instance: str = "SMPP1") -> tuple[str, int]:
        """``(host, port)`` of an instance's first listener."""

    def port(self, instance: str = "SMPP1") -> int:
        """The port of an instance's first listener."""

    def info(self) -> Any:
        """``GET /api/v1``: version, seed, endpoints, accounts."""

    def instances(self) -> Any:
        """Every instance with its state."""

    def instance(self, name: str) -> Any:
        """One instance."""

    def start_outage(
        self,
        instance: str,
        mode: str,
        duration: float | None = None,
        status: int | str | None = None,
        latency: float | None = None,
    ) -> Any:
        """Start an outage (graceful, crash, blackhole, bind-hang, reject-binds, slow)."""

    def end_outage(self, instance: str) -> Any:
        """End an instance's outage."""

    def sessions(self, **filters: Any) -> Any:
        """Open sessions (filters: account, instance, bind_type, state)."""

    def end_session(self, session_id: int, how: str = "unbind") -> Any:
        """End a session with an unbind or a TCP reset."""

    def messages(self, limit: int = 100, offset: int = 0, **filters: Any) -> Any:
        """Messages, oldest first, filtered as ``GET /api/v1/messages``."""

    def message(self, message_id: str) -> Any:
        """One message with its history and receipts."""

    def submits(self, limit: int = 100, offset: int = 0, **filters: Any) -> Any:
        """Every submit the ESMEs sent, accepted or refused, with the status each got."""

    def force_receipt(self, message_id: str, stat: str, err: int | None = None) -> Any:
        """End a message now with receipt ``stat``."""

    def inject_mo(self, source: str, destination: str, text: str | None = None, **options: Any) -> Any:
        """Originate an MO message; the message ids of its parts."""

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0, **filters: Any) -> Any:
        """The first ``count`` matching messages once there are that many."""

    def wait_for_receipt(self, message_id: str, outcome: str = "acked", timeout: float = 10.0) -> Any:
        """``{"message": ..., "receipt": ...}`` once the message's final receipt reached ``outcome``."""

    def wait_for_bind(
        self,
        account: str | None = None,
        instance: str | None = None,
        bind_type: str | None = None,
        count: int = 1,
        timeout: float = 10.0,
    ) -> Any:
        """The bound sessions matching, once there are ``count`` of them."""

    def scenario(self) -> Any:
        """The active scenario's summary."""

    def load_scenario(self, name: str | None = None, *, yaml: str | None = None) -> Any:
        """Switch scenario, by shipped name or path, or by YAML text."""

    def reset(self, outages: bool = True, scenario: bool = True, sessions: bool = False) -> Any:
        """
        Forget messages, counters, the judge's findings and the trace ring; end outages and reload the
        configured scenario unless told not to.
        """

    def stats(self) -> Any:
        """Every cluster's counters."""

    def conformance(self, **filters: Any) -> Any:
        """The conformance judge's summary."""

    def assert_conformant(self, allow: Iterable[str] = (), fail_on: str = "warning", **filters: Any) -> Any:
        """Raise ``AssertionError`` with each finding unless the ESME is conformant."""

    def reset_conformance(self) -> Any:
        """Forget the judge's findings."""

    def stop(self) -> Any:
        """Stop the simulator (every session is unbound first)."""
