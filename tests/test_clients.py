"""
End to end with independent ESME libraries against the simulator on real
TCP: aiosmpplib (asyncio) binds, submits and receives its receipt.

The simulator runs in the test process on the reactor (pytest-twisted);
aiosmpplib runs its own asyncio loop in a worker thread, as an application
would, so nothing of the simulator's code is on the client side.
aiosmpplib 0.7.4 refuses passwords longer than 8 characters, hence the
short-password account.  docs/clients.md lists what is tested and how.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any, Callable

import pytest
import pytest_twisted
from aiosmpplib import ESME, AbstractHook, DeliverSm, PhoneNumber, SmppMessage, SubmitSm, SubmitSmResp
from aiosmpplib.broker import SimpleBroker
from aiosmpplib.correlator import SimpleCorrelator
from twisted.internet.threads import deferToThread

from smsc_sim.config import AccountSettings, Config, CoreSettings, default_config
from tests.kannel_harness import with_port

pytestmark = pytest.mark.integration

ACCOUNT = AccountSettings("aioesme", "secret")
RECEIPTED_MESSAGE_ID = 0x001E
#: seconds a client waits for what it expects (receipts come 1-5 s after the submit)
WAIT = 20.0
#: aiosmpplib's own log level (it logs to stderr, which pytest captures)
CLIENT_LOG_LEVEL = logging.WARNING


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _config(**core: Any) -> Config:
    config = dataclasses.replace(default_config(), accounts=(ACCOUNT,))
    if core:
        config = dataclasses.replace(config, core=dataclasses.replace(CoreSettings(), **core))
    return with_port(config)


class _Recorder(AbstractHook):
    """Keeps what aiosmpplib hands its hook; sets ``receipt`` when a delivery receipt arrives."""

    def __init__(self) -> None:
        self.messages: list[SmppMessage] = []
        self.errors: list[Exception] = []
        self.receipt = asyncio.Event()

    async def sending(self, smpp_message: SmppMessage, pdu: bytes, client_id: str) -> None:
        pass

    async def received(self, smpp_message: SmppMessage | None, pdu: bytes, client_id: str) -> None:
        if smpp_message is None:
            return
        self.messages.append(smpp_message)
        if isinstance(smpp_message, DeliverSm) and smpp_message.is_receipt():
            self.receipt.set()

    async def send_error(self, smpp_message: SmppMessage, error: Exception, client_id: str) -> None:
        self.errors.append(error)
        self.receipt.set()  # stop waiting: the test reports it


class ReceiptTLVCorrelator(SimpleCorrelator):
    """
    aiosmpplib's correlator, made to find a receipt by its
    receipted_message_id TLV (the id exactly as in submit_sm_resp) rather
    than by the receipt text's ``id:`` (decimal at the provider).
    """

    async def get_delivery(self, receipt: DeliverSm) -> SubmitSm | None:
        parsed = receipt.parse_receipt()
        for param in receipt.optional_params or ():
            if param.tag == RECEIPTED_MESSAGE_ID:
                parsed["id"] = str(param.value)
        return await super().get_delivery(receipt)


def _run_client(
    host: str, port: int, submit: SubmitSm, correlator: Callable[[str], Any] | None = None
) -> dict[str, Any]:
    """In a worker thread: bind aiosmpplib, submit, wait for the receipt, unbind."""

    async def session() -> dict[str, Any]:
        hook = _Recorder()
        broker = SimpleBroker()
        esme = ESME(
            smsc_host=host,
            smsc_port=port,
            system_id=ACCOUNT.system_id,
            password=ACCOUNT.password,
            broker=broker,
            hook=hook,
            correlator=correlator(ACCOUNT.system_id) if correlator is not None else None,
            log_level=CLIENT_LOG_LEVEL,
            client_id="aiosmpplib-test",
        )
        runner = asyncio.create_task(esme.start())
        receipt = asyncio.create_task(hook.receipt.wait())
        try:
            await broker.enqueue(submit)
            done, _ = await asyncio.wait({runner, receipt}, timeout=WAIT, return_when=asyncio.FIRST_COMPLETED)
            if runner in done:
                runner.result()  # the client's own error, if it died
                raise AssertionError("aiosmpplib's ESME stopped on its own")
            if receipt not in done:
                raise AssertionError(f"aiosmpplib got no receipt within {WAIT:g} s; it received {hook.messages!r}")
        finally:
            receipt.cancel()
            await asyncio.wait_for(esme.stop(), 10)
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
        return {"received": hook.messages, "errors": hook.errors}

    return asyncio.run(session())


async def _with_simulator(config: Config, client: Callable[[str, int], dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
    """Start the simulator, run ``client(host, port of SMPP1)`` in a thread, stop the simulator."""
    from smsc_sim.service import build_service

    simulator = build_service(config, _reactor())
    simulator.startService()
    try:
        await simulator.when_listening()
        host, port = simulator.endpoints()["SMPP1"][0]
        result = await deferToThread(client, host, port)
    finally:
        await simulator.stopService()
    return simulator, result


def _only(items: list[Any], kind: type) -> Any:
    found = [item for item in items if isinstance(item, kind)]
    assert len(found) == 1, f"expected one {kind.__name__}, got {found!r}"
    return found[0]


def _submit(destination: str, text: str, log_id: str = "m1") -> SubmitSm:
    return SubmitSm(
        short_message=text,
        source=PhoneNumber("447700900000"),
        destination=PhoneNumber(destination),
        registered_delivery=1,
        log_id=log_id,
    )


@pytest_twisted.ensureDeferred
async def test_aiosmpplib_bind_submit_receipt() -> None:
    """
    aiosmpplib binds as a transceiver, its submit_sm gets a 16-hex-digit
    message id, and the DELIVRD receipt it receives names that message: in
    decimal in the text, exactly as submitted in receipted_message_id.
    """
    config = _config()
    simulator, result = await _with_simulator(
        config, lambda host, port: _run_client(host, port, _submit("447700900010", "Hello from aiosmpplib"))
    )
    assert result["errors"] == []
    resp = _only(result["received"], SubmitSmResp)
    receipt = _only(result["received"], DeliverSm)
    message_id = resp.message_id
    assert len(message_id) == 16 and int(message_id, 16) > 0
    fields = receipt.parse_receipt()
    assert fields["stat"] == "DELIVRD"
    assert fields["id"] == str(int(message_id, 16))
    tlvs = {param.tag: param.value for param in receipt.optional_params}
    assert tlvs[RECEIPTED_MESSAGE_ID] == message_id

    record = simulator.instance("SMPP1").core.message(message_id)
    assert record is not None
    assert (record.account, record.destination_addr) == ("aioesme", "447700900010")
    assert record.text == "Hello from aiosmpplib"
    assert record.state.name == "DELIVERED"


@pytest_twisted.ensureDeferred
async def test_aiosmpplib_correlates_by_receipted_message_id() -> None:
    """
    With a correlator that reads receipted_message_id, aiosmpplib ties the
    provider's receipt (decimal ``id:``) to its submit (hex id): the receipt
    comes back carrying the submit's log_id.
    """
    _, result = await _with_simulator(
        _config(),
        lambda host, port: _run_client(
            host, port, _submit("447700900011", "Correlate me", "order-42"), ReceiptTLVCorrelator
        ),
    )
    receipt = _only(result["received"], DeliverSm)
    assert receipt.log_id == "order-42"


@pytest_twisted.ensureDeferred
async def test_aiosmpplib_stock_correlator_needs_decimal_ids() -> None:
    """
    aiosmpplib's stock correlator looks receipts up by the text's ``id:``:
    with the provider's hex submit ids it cannot tie the receipt to its
    submit, and with ``message_id_format: decimal`` it can.
    """
    _, hex_result = await _with_simulator(
        _config(), lambda host, port: _run_client(host, port, _submit("447700900012", "Hex ids", "hex-1"))
    )
    assert _only(hex_result["received"], DeliverSm).log_id == ""

    _, decimal_result = await _with_simulator(
        _config(message_id_format="decimal"),
        lambda host, port: _run_client(host, port, _submit("447700900013", "Decimal ids", "dec-1")),
    )
    resp = _only(decimal_result["received"], SubmitSmResp)
    assert resp.message_id.isdigit()
    assert _only(decimal_result["received"], DeliverSm).log_id == "dec-1"


@pytest_twisted.ensureDeferred
async def test_aiosmpplib_stock_correlator_with_hex_receipt_ids() -> None:
    """
    With the account set to ``receipt_id_format: hex`` (the provider's other
    account configuration), the receipt text's ``id:`` is the submit's hex
    id, and aiosmpplib's stock correlator ties the receipt to its submit.
    """
    config = _config()
    config = dataclasses.replace(config, accounts=(dataclasses.replace(ACCOUNT, receipt_id_format="hex"),))
    _, result = await _with_simulator(
        config, lambda host, port: _run_client(host, port, _submit("447700900014", "Hex receipts", "hex-2"))
    )
    resp = _only(result["received"], SubmitSmResp)
    receipt = _only(result["received"], DeliverSm)
    assert receipt.parse_receipt()["id"] == resp.message_id
    assert receipt.log_id == "hex-2"


@pytest_twisted.ensureDeferred
async def test_aiosmpplib_long_text_in_message_payload() -> None:
    """
    aiosmpplib sends a 300-character text in one submit_sm with
    message_payload; the simulator keeps it whole, as one message, and
    receipts it.
    """
    text = "".join(f"{n:03d}-" for n in range(75))  # 300 characters
    simulator, result = await _with_simulator(
        _config(), lambda host, port: _run_client(host, port, _submit("447700900014", text))
    )
    assert result["errors"] == []
    resp = _only(result["received"], SubmitSmResp)
    record = simulator.instance("SMPP1").core.message(resp.message_id)
    assert record is not None
    assert record.text == text
    assert record.concat is None
    assert _only(result["received"], DeliverSm).parse_receipt()["stat"] == "DELIVRD"
