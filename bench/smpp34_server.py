"""
A minimal SMSC on smpp34 (a Rust-backed SMPP library), for comparison in bench/run.py.

It accepts every bind, answers every submit_sm with a fresh message id and,
when the submit asks for one, sends a DELIVRD receipt ``--receipt-delay``
seconds later on the same session (smpp34's server hands deliver_sm to the
session that submitted).  Nothing else: no accounts, no throttle, no
store.  It is the floor of what an SMSC written on a fast library costs,
measured with the same generator and the same shapes as smsc-sim.

    python bench/smpp34_server.py --port 2775 [--receipt-delay 0.5]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

import smpp34

TLV_RECEIPTED_MESSAGE_ID = 0x001E
TLV_MESSAGE_STATE = 0x0427


async def serve(host: str, port: int, receipt_delay: float) -> None:
    """Accept binds and submits until killed."""
    server = smpp34.Server(host=host, port=port, system_id="SMPP34")
    await server.start()
    print(f"smpp34 server listening on {host}:{port}", flush=True)
    sessions: dict[str, Any] = {}
    loop = asyncio.get_running_loop()
    counter = 0
    pending: set[asyncio.Task[Any]] = set()

    async def receipt(esme: Any, source: str, destination: str, message_id: str) -> None:
        stamp = time.strftime("%y%m%d%H%M", time.gmtime())
        text = f"id:{message_id} sub:001 dlvrd:001 submit date:{stamp} done date:{stamp} stat:DELIVRD err:000 text:"
        try:
            await esme.deliver_sm(
                source,
                text.encode(),
                source_addr=destination,
                esm_class=0x04,
                tlvs=[
                    smpp34.Tlv(TLV_RECEIPTED_MESSAGE_ID, message_id.encode() + b"\x00"),
                    smpp34.Tlv(TLV_MESSAGE_STATE, b"\x02"),
                ],
            )
        except Exception:  # the session went away: the receipt is lost, as on a real SMSC without a store
            pass

    def later(esme: Any, source: str, destination: str, message_id: str) -> None:
        task = loop.create_task(receipt(esme, source, destination, message_id))
        pending.add(task)
        task.add_done_callback(pending.discard)

    while True:
        event = await server.next()
        if isinstance(event, smpp34.SubmitSmEvent):
            counter += 1
            message_id = f"{counter:016X}"
            event.accept(message_id=message_id)
            esme = sessions.get(event.session_id)
            if event.registered_delivery & 0x03 and esme is not None:
                loop.call_later(receipt_delay, later, esme, event.source_addr, event.destination_addr, message_id)
        elif isinstance(event, smpp34.Esme):
            sessions[event.session_id] = event
        elif isinstance(event, smpp34.Unbound):
            sessions.pop(event.session_id, None)


def main() -> None:
    """Parse the options and serve."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2775)
    parser.add_argument("--receipt-delay", type=float, default=0.5, help="seconds from submit to receipt")
    options = parser.parse_args()
    try:
        asyncio.run(serve(options.host, options.port, options.receipt_delay))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
