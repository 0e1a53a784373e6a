"""
:class:`SimulatorProcess`: a whole simulator in a child process, on
ephemeral ports of 127.0.0.1, for ESMEs written with any library (smpplib,
aiosmpplib, Java over JPype...): the test process needs no reactor.  It is
a :class:`~smsc_sim.testing.client.SyncSMSCClient` as well, so every API
call is a method of it.  Importable from :mod:`smsc_sim.testing.harness`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from smsc_sim.testing.client import SyncSMSCClient
from smsc_sim.testing.forms import EPHEMERAL, SimulatorStartError, Where, configure
from smsc_sim.testing.protocol import FormOptionError

__all__ = ["SimulatorProcess"]


def _instance_names(config_path: str | None, env: dict[str, str]) -> list[str]:
    """The instances a child will have, to give each an ephemeral port."""
    from smsc_sim.config_loader import load_config

    return [instance.name for instance in load_config(config_path, {}, env).instances]


class SimulatorProcess(Where, SyncSMSCClient):
    """
    A simulator in a child process; a context manager.

    :param args: more ``twistd smsc-sim`` options (``--trace``, ``--store``...).
    :param config: a YAML configuration file.
    :param scenario: a scenario name or path.
    :param accounts: ``(system_id, password)`` pairs replacing the configured accounts.
    :param token: a bearer token for the API.
    :param seed: the seed of every random choice.
    :param env: environment variables for the child (on top of this process's).
    :param startup_timeout: seconds the child has to listen.
    :param python: the interpreter to run it with.
    """

    def __init__(
        self,
        *args: str,
        config: str | None = None,
        scenario: str | None = None,
        accounts: list[tuple[str, str]] | None = None,
        token: str | None = None,
        seed: int | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
        python: str = sys.executable,
    ) -> None:
        if config is not None and not isinstance(config, str):
            raise FormOptionError(
                "SimulatorProcess takes config as the path of a YAML file (the child reads it); "
                f"got {type(config).__name__}: write it to a file, or use ThreadedSimulator for a Config object"
            )
        if accounts is not None:
            configure(None, accounts=accounts)  # the same check, and the same message, as the other forms
        self.env = dict(os.environ, **(env or {}))
        if token is None:
            # a token in the environment reaches the child through its SMSC_SIM_* variables
            token = self.env.get("SMSC_SIM_API_TOKEN") or None
        SyncSMSCClient.__init__(self, "http://127.0.0.1:0", token)
        self.args = list(args)
        self.config_path = config
        self.scenario_name = scenario
        self.account_list = accounts
        self.seed = seed
        self.startup_timeout = startup_timeout
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None
        self._endpoints: dict[str, list[tuple[str, int]]] = {}
        self.accounts = []
        self.api_url = ""
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self.log_path = ""

    @property
    def endpoints(self) -> dict[str, list[tuple[str, int]]]:
        """Where each instance listened at start: ``{"SMPP1": [("127.0.0.1", 40123)]}``."""
        return self._endpoints

    def command(self) -> list[str]:
        """The child's command line."""
        command = [self.python, "-m", "smsc_sim.testing.serve", "--exit-with-stdin"]
        command += ["--ports-file", os.path.join(self._directory(), "ports.json"), "--api", EPHEMERAL]
        for name in _instance_names(self.config_path, self.env):
            command += ["--listen", f"{name}={EPHEMERAL}"]
        if self.config_path:
            command += ["--config", self.config_path]
        if self.scenario_name:
            command += ["--scenario", self.scenario_name]
        if self.seed is not None:
            command += ["--seed", str(self.seed)]
        if self.token:
            command += ["--api-token", self.token]
        for system_id, password in self.account_list if self.account_list is not None else ():
            command += ["--account", f"{system_id}:{password}"]
        return command + self.args

    def _directory(self) -> str:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="smsc-sim-")
        return self._dir.name

    def start(self) -> SimulatorProcess:
        """Start the child and wait until every listener is open."""
        if self.process is not None:
            return self
        ports = os.path.join(self._directory(), "ports.json")
        self.log_path = os.path.join(self._directory(), "smsc-sim.log")
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                self.command(), stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=self.env
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        # the child writes the file (atomically) once it listens: polling a file is all a
        # reactor-less test process can do, and it costs a few milliseconds at start only
        while not os.path.exists(ports):
            if self.process.poll() is not None or time.monotonic() > deadline:
                said = self.log_text()
                why = "exited" if self.process.returncode is not None else "did not listen in time"
                self.stop()
                raise SimulatorStartError(f"smsc-sim {why}; its log ends:\n{said[-3000:]}")
            time.sleep(0.02)
        with open(ports, encoding="utf-8") as f:
            found = json.load(f)
        self._endpoints = {name: [(h, p) for h, p in where] for name, where in found["instances"].items()}
        self.accounts = [(a[0], a[1]) for a in found["accounts"]]
        host, port = found["api"]
        self.api_url = f"http://{host}:{port}"
        self.base_url = self.api_url + "/api/v1"
        return self

    def log_text(self) -> str:
        """What the child logged so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, ValueError):
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the child gracefully (it unbinds every session), killing it if it hangs."""
        process, self.process = self.process, None
        if process is not None:
            if process.stdin is not None:
                process.stdin.close()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def running(self) -> bool:
        """Whether the child runs."""
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
