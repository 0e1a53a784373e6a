"""
The docs run as pasted: every ``sh`` block of README.md and docs/*.md runs,
in the order shown, against a default simulator (on ephemeral ports: the
commands' default ports 8775 and 2775-2777 are rewritten, and each rewrite
is checked), and exits 0; the README's smpplib session runs without a
warning.  A block that cannot run here says so just above its fence:
``<!-- docs-test: not run: REASON -->``.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import pytest
import yaml

from smsc_sim.testing.harness import SimulatorProcess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
NOT_RUN = re.compile(r"^<!-- docs-test: not run: (?P<reason>.*\S.*) -->$")
#: the default ports a pasted command names, by what listens there
DEFAULT_PORTS = {"8775": "api", "2775": "SMPP1", "2776": "SMPP2", "2777": "SMPP0"}
PORT = re.compile(r"(?<![\w.])(8775|2775|2776|2777)(?!\w)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a document."""

    path: str
    line: int
    lang: str
    text: str
    not_run: str | None

    def where(self) -> str:
        return f"{os.path.relpath(self.path, ROOT)}:{self.line}"


def blocks(path: str) -> list[Block]:
    """Every fenced block of a Markdown file, with the not-run reason written above it."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    found = []
    index = 0
    while index < len(lines):
        fence = re.match(r"^```(\S*)\s*$", lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        index += 1
        body = []
        while index < len(lines) and lines[index] != "```":
            body.append(lines[index])
            index += 1
        above = lines[start - 1] if start > 0 else ""
        marker = NOT_RUN.match(above)
        found.append(Block(path, start + 1, fence.group(1), "\n".join(body) + "\n", marker and marker["reason"]))
        index += 1
    return found


def every_block() -> list[Block]:
    return [block for path in DOCS for block in blocks(path)]


def rewrite(block: Block, ports: dict[str, int]) -> str:
    """The block with every default port replaced by the test simulator's; asserts each one was."""
    text, count = PORT.subn(lambda m: str(ports[DEFAULT_PORTS[m.group(1)]]), block.text)
    names_the_simulator = any(word in block.text for word in ("localhost", "127.0.0.1", "curl"))
    assert count or not names_the_simulator, f"{block.where()}: names the simulator but no default port to rewrite"
    assert not PORT.search(text), f"{block.where()}: a default port is left after the rewrite"
    return text


def test_every_shell_block_runs_or_says_why_not() -> None:
    """Commands are in sh blocks without prompts, so they paste; a block not run names its reason."""
    shell = [b for b in every_block() if b.lang == "sh"]
    assert len(shell) >= 10
    for block in every_block():
        prompts = [line for line in block.text.splitlines() if line.startswith("$ ")]
        assert not prompts, f"{block.where()}: '$ ' prompts do not paste; use an sh block of bare commands"
        if block.lang in ("console", "shell", "bash"):
            raise AssertionError(f"{block.where()}: commands go in sh blocks (the ones this test runs)")
    assert any(b.not_run is None for b in shell)


def test_no_curl_hides_an_error_body() -> None:
    """No curl command in an sh block uses -f, which hides the API's error body (a 408's matched messages)."""
    for block in every_block():
        if block.lang != "sh":
            continue
        for line in block.text.splitlines():
            if line.lstrip().startswith("curl") or " curl " in line:
                assert not re.search(r"\s-[a-zA-Z]*f[a-zA-Z]*\b|--fail", line), f"{block.where()}: {line}"


def test_smpplib_snippets_allow_unknown_tlvs() -> None:
    """Every smpplib client in the docs passes allow_unknown_opt_params=True, so it runs without warnings."""
    clients = 0
    for block in every_block():
        for call in re.findall(r"smpplib\.client\.Client\((.*)\)", block.text):
            clients += 1
            assert "allow_unknown_opt_params=True" in call, f"{block.where()}: {call}"
    assert clients >= 3


def test_compose_example_is_runnable_as_is() -> None:
    """examples/compose/compose.yaml builds this checkout's Dockerfile and publishes every port on loopback."""
    path = os.path.join(ROOT, "examples", "compose", "compose.yaml")
    with open(path, encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    [(name, service)] = compose["services"].items()
    assert name == "smsc-sim"
    context = os.path.normpath(os.path.join(os.path.dirname(path), service["build"]["context"]))
    assert os.path.isfile(os.path.join(context, "Dockerfile")), context
    assert service["image"] == "smsc-sim"  # a local name, not a registry placeholder
    published = {entry.rsplit(":", 1)[1] for entry in service["ports"]}
    assert published == {"2775", "2776", "2777", "8775"}
    assert all(entry.startswith("127.0.0.1:") for entry in service["ports"])
    assert all(key.startswith("SMSC_SIM_") for key in service["environment"])


def test_ci_doc_tells_the_truth() -> None:
    """docs/ci.md installs from a checkout or Git, builds the image locally, and calls each placeholder one."""
    with open(os.path.join(ROOT, "docs", "ci.md"), encoding="utf-8") as f:
        text = f.read()
    assert "docker build -t smsc-sim ." in text
    assert "python3 -m pip install ." in text and "git+https://" in text
    for line in text.splitlines():
        for command in re.findall(r"pip install ([^`#\n]*)", line.replace("`pip install smsc-sim` finds nothing", "")):
            assert "smsc-sim" not in command.split(), line  # from an index, where it is not
        if re.search(r"your-org|your-group|OWNER", line) and "placeholder" not in line:
            # the sentence that says so is next to it
            assert "placeholder" in text[text.index(line) - 400 : text.index(line) + 400], line


@pytest.mark.integration
def test_documented_commands_run_as_pasted() -> None:
    """
    Against one default simulator: the README's smpplib session (no warning), then every sh block
    of README.md and docs/*.md in order, each exiting 0 without an unknown route.
    """
    ran = 0
    with SimulatorProcess() as smsc, tempfile.TemporaryDirectory(prefix="smsc-sim-docs-") as scratch:
        ports = {"api": int(smsc.api_url.rsplit(":", 1)[1])}
        ports.update({name: smsc.port(name) for name in ("SMPP1", "SMPP2", "SMPP0")})
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMSC_SIM_")}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
        for block in every_block():
            if block.not_run is not None:
                continue
            if block.lang == "python" and 'smpplib.client.Client("127.0.0.1", 27' in block.text:
                command = [sys.executable, "-W", "error", "-c", rewrite(block, ports)]
            elif block.lang == "sh":
                command = ["bash", "-e", "-o", "pipefail", "-c", rewrite(block, ports)]
            else:
                continue
            result = subprocess.run(command, cwd=scratch, env=env, capture_output=True, text=True, timeout=120)
            said = result.stdout + result.stderr
            assert result.returncode == 0, f"{block.where()} exited {result.returncode}:\n{said[-3000:]}"
            # every documented call succeeds here: the API's error answers all carry "error"
            assert '{"error": {' not in said and "Warning" not in result.stderr, f"{block.where()}:\n{said[-3000:]}"
            ran += 1
    assert ran >= 3
