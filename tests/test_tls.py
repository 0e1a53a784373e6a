"""
SMPP over TLS: the simulator on an ``ssl:`` endpoint, with a certificate
made in the test's temporary directory.

Twisted's TLS needs pyOpenSSL and service_identity (``twisted[tls]``); the
certificate is made with ``cryptography``, which pyOpenSSL depends on.
``scripts/make-test-certs.sh`` makes the same kind of files with openssl.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import ssl
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.endpoints import (
    SSL4ClientEndpoint,
    TCP4ClientEndpoint,
    connectProtocol,
    quoteStringArgument,
    serverFromString,
)
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.threads import deferToThread

from smsc_sim.config import Config, LimitSettings, default_config
from smsc_sim.limits import ConnectionLimiter
from tests import wire
from tests.test_limits import WAIT, LimitedFactory, RawClient, _errors_logged, _smpplib_bind

pytestmark = pytest.mark.integration


def make_certificate(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """
    A self-signed server certificate for ``host`` (an IP address) and its key, as PEM files.

    :returns: ``(certificate, key)`` paths; the certificate is also what a client trusts.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smsc-sim test")])
    # cryptography wants a wall-clock validity window; a fixed one keeps the test independent of the date
    start = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365 * 200))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def tls_endpoint(cert: Path, key: Path) -> str:
    """An ``ssl:`` server endpoint on an ephemeral port of 127.0.0.1 (paths quoted: they may hold colons)."""
    return (
        f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(str(key))}"
        f":certKey={quoteStringArgument(str(cert))}"
    )


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _config(endpoint: str) -> Config:
    config = default_config()
    instances = tuple(dataclasses.replace(i, endpoints=(endpoint,)) for i in config.instances[:1])
    return dataclasses.replace(config, instances=instances, api_endpoint="", seed=0)


def _client_context(cert: Path) -> ssl.SSLContext:
    """Trust exactly the test certificate.  smpplib wraps its socket without a
    server_hostname, so the name cannot be checked; the chain still is."""
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    return context


async def _started(config: Config) -> tuple[Any, str, int]:
    from smsc_sim.service import build_service

    simulator = build_service(config, _reactor())
    simulator.startService()
    await simulator.when_listening()
    host, port = simulator.endpoints()["SMPP1"][0]
    return simulator, host, port


@pytest_twisted.ensureDeferred
async def test_smpplib_binds_over_tls(tmp_path: Path) -> None:
    """smpplib, verifying the certificate, binds and unbinds over TLS on an ssl: endpoint."""
    cert, key = make_certificate(tmp_path)
    simulator, host, port = await _started(_config(tls_endpoint(cert, key)))
    bad, stop_watching = _errors_logged()
    try:
        statuses = await deferToThread(_smpplib_bind, host, port, _client_context(cert))
        assert statuses == (0, 0)
        assert [e.get("log_format") for e in bad] == []
    finally:
        stop_watching()
        await simulator.stopService()


@pytest_twisted.ensureDeferred
async def test_plain_tcp_on_tls_port_is_dropped(tmp_path: Path) -> None:
    """An ESME speaking plain SMPP to a TLS port gets nothing back and is disconnected; TLS binds go on."""
    reactor = _reactor()
    cert, key = make_certificate(tmp_path)
    simulator, host, port = await _started(_config(tls_endpoint(cert, key)))
    try:
        plain = RawClient(lambda t: t.write(wire.bind()))
        await connectProtocol(TCP4ClientEndpoint(reactor, host, port), plain)
        await plain.lost.addTimeout(WAIT, reactor)
        assert plain.received == b""
        assert await deferToThread(_smpplib_bind, host, port, _client_context(cert)) == (0, 0)
    finally:
        await simulator.stopService()


@pytest_twisted.ensureDeferred
async def test_connection_limit_over_tls(tmp_path: Path) -> None:
    """Past the per-address limit a TLS connection is reset cleanly: nothing logged as an error, the first still binds."""
    reactor = _reactor()
    cert, key = make_certificate(tmp_path)
    simulator, host, _ = await _started(_config("tcp:0:interface=127.0.0.1"))
    limiter = ConnectionLimiter(LimitSettings(max_connections_per_address=1), reactor)
    port = await serverFromString(reactor, tls_endpoint(cert, key)).listen(
        LimitedFactory(simulator, simulator.instances["SMPP1"], limiter)
    )
    bad, stop_watching = _errors_logged()
    trust = optionsForClientTLS("127.0.0.1", Certificate.loadPEM(cert.read_bytes()))
    endpoint = SSL4ClientEndpoint(reactor, host, port.getHost().port, trust)
    try:
        first = RawClient(lambda t: t.write(wire.bind()), expect=16)
        await connectProtocol(endpoint, first)
        answer = await first.enough.addTimeout(WAIT, reactor)
        second = RawClient(lambda t: t.write(wire.bind()))
        await connectProtocol(endpoint, second)
        await second.lost.addTimeout(WAIT, reactor)
        assert wire.headers(answer)[0] == (0x80000009, 0, 1)
        assert second.received == b""
        assert limiter.refused["max_connections_per_address"] == 1
        first.transport.abortConnection()
        await first.lost.addTimeout(WAIT, reactor)
        assert [e.get("log_format") for e in bad] == []
    finally:
        stop_watching()
        await port.stopListening()
        await simulator.stopService()
