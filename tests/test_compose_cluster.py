"""
examples/compose/cluster.yaml without a Docker engine: it is YAML with the
promised services (redis, smpp1, smpp2, smpp0), each simulator built from
this checkout's Dockerfile, and every environment it gives a container is
one the simulator accepts, over the image's own ENV, giving the process the
instance, cluster store and ports the file publishes.
"""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from smsc_sim.config_loader import load_config
from tests.test_container import ROOT, image_environment, last

PATH = os.path.join(ROOT, "examples", "compose", "cluster.yaml")
SIMULATORS = ("smpp1", "smpp2", "smpp0")


def _compose() -> dict[str, Any]:
    with open(PATH, encoding="utf-8") as f:
        loaded: dict[str, Any] = yaml.safe_load(f)
    return loaded


def _interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with nothing set in the shell: the default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_services_and_builds() -> None:
    """redis and the three simulators, each built from the checkout's Dockerfile and started once Redis is healthy."""
    services = _compose()["services"]
    assert set(services) == {"redis", *SIMULATORS}
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in SIMULATORS:
        service = services[name]
        context = os.path.normpath(os.path.join(os.path.dirname(PATH), service["build"]["context"]))
        assert os.path.isfile(os.path.join(context, "Dockerfile")), context
        assert service["image"] == "smsc-sim"
        assert service["depends_on"] == {"redis": {"condition": "service_healthy"}}
        # the image's check is kept (no test given here) and asks readiness, which follows Redis
        assert "test" not in service["healthcheck"] and "disable" not in service["healthcheck"]
    assert "/api/v1/health/ready" in last("HEALTHCHECK")


def test_each_environment_is_accepted_and_runs_its_instance() -> None:
    """
    Each simulator's environment, over the image's ENV, loads as the simulator
    would load it: it runs only its instance, every cluster shares the
    ``redis`` service's Redis, and the ports it publishes are its SMPP listener
    and its API, on loopback, each host port once.
    """
    services = _compose()["services"]
    host_ports: list[str] = []
    for name in SIMULATORS:
        service = services[name]
        environment = {key: _interpolate(str(value)) for key, value in service["environment"].items()}
        assert all(key.startswith("SMSC_SIM_") for key in environment)
        config = load_config(None, {}, {**image_environment(), **environment})
        assert config.run_instances == (name.upper(),)
        for cluster in config.clusters():
            url = config.store_of(cluster)
            assert url.startswith("redis://redis:"), url
        instance = next(i for i in config.instances if i.name == name.upper())
        smpp_port = re.match(r"tcp:(\d+)", instance.endpoints[0])
        api_port = re.match(r"tcp:(\d+)", config.api_endpoint)
        assert smpp_port and api_port, (instance.endpoints, config.api_endpoint)
        published = {entry.rsplit(":", 1)[1]: entry for entry in service["ports"]}
        assert set(published) == {smpp_port.group(1), api_port.group(1)}
        assert all(entry.startswith("127.0.0.1:") for entry in service["ports"])
        host_ports += [entry.split(":")[1] for entry in service["ports"]]
    assert len(host_ports) == len(set(host_ports))
