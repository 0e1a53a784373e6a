"""
The Kannel harness on a shared machine: a port picked free for Kannel and
taken by another process before Kannel binds it is reported with the box's
own log line, and Kannel is started again on new ports, a bounded number of
times (tests/kannel_harness.py).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from tests import kannel_harness
from tests.kannel_harness import START_ATTEMPTS, Kannel, KannelError, KannelSettings

pytestmark = pytest.mark.kannel


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest.fixture
def taken() -> Iterator[int]:
    """A port of 127.0.0.1 another process listens on (it answers nothing)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield int(other.getsockname()[1])


def _settings() -> KannelSettings:
    """Binds to a port nothing listens on (1): these tests wait for bearerbox and smsbox only."""
    nowhere = ("127.0.0.1", 1)
    return KannelSettings(smpp1=nowhere, smpp2=nowhere, smpp0=nowhere, user="u", password="p",
                          dlr_url="http://127.0.0.1:1/dlr", mo_url="http://127.0.0.1:1/mo")  # fmt: skip


@pytest_twisted.ensureDeferred
async def test_a_taken_admin_port_is_reported_and_kannel_starts_again_on_new_ports(tmp_path: Path, taken: int) -> None:
    """
    bearerbox given an admin port another process holds logs "bind failed"
    and runs on without its admin interface; the start reports that line
    and starts Kannel again on new ports, where its status page answers
    with smsbox connected.
    """
    kannel = Kannel(_reactor(), tmp_path, _settings(), admin_port=taken)
    try:
        await kannel.start(online=())
        [failure] = kannel.port_failures
        assert failure.startswith(f"start 1 of {START_ATTEMPTS}: bearerbox could not bind a port (admin {taken},")
        assert "Address already in use" in failure
        assert kannel.admin_port != taken
        assert "smsbox" in (await kannel.status()).boxes
        assert "Address already in use" in (tmp_path / "bearerbox.console.1").read_text()
    finally:
        await kannel.stop()


@pytest_twisted.ensureDeferred
async def test_kannel_that_never_binds_fails_after_the_bounded_starts(
    tmp_path: Path, taken: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """
    When every port picked is taken, the start gives up after
    START_ATTEMPTS starts with one error naming each start's bind failure,
    instead of a timeout or a status page of someone else's.
    """
    monkeypatch.setattr(kannel_harness, "free_port", lambda: taken)
    kannel = Kannel(_reactor(), tmp_path, _settings(), admin_port=taken, smsbox_port=taken, sendsms_port=taken)
    try:
        with pytest.raises(KannelError, match=f"could not bind its ports in {START_ATTEMPTS} starts") as raised:
            await kannel.start(online=())
        for attempt in range(1, START_ATTEMPTS + 1):
            assert f"start {attempt} of {START_ATTEMPTS}: bearerbox could not bind a port" in str(raised.value)
        assert not any(box.running for box in kannel.boxes.values())
    finally:
        await kannel.stop()
