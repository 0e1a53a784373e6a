"""
Tests of the packaging: the built wheel carries the twistd plugin and the
shipped scenarios, twistd finds ``smsc-sim`` from a checkout and from an
installed wheel, and a bad configuration stops twistd with one clear line.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.trial.unittest import SynchronousTestCase

import smsc_sim
from smsc_sim import tap

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: runs twistd's console script in this interpreter
TWISTD = [sys.executable, "-c", "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"]
#: what the copy of the checkout leaves out: VCS data, build output, caches
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "dropin.cache",
    ".mypy_cache",
    ".pytest_cache",
    ".hypothesis",
    "_trial_temp",
    "tests.*",
    ".venv",
    "*.sqlite*",
)


def _scratch() -> str:
    """A temporary directory removed when the test process ends."""
    directory = tempfile.mkdtemp(prefix="smsc-sim-packaging-")
    atexit.register(shutil.rmtree, directory, True)
    return directory


@functools.lru_cache(maxsize=None)
def build_wheel() -> str:
    """
    Build the wheel once per test run, from a clean copy of the checkout.

    Building a copy keeps build/ and *.egg-info out of the working tree and
    stale build output out of the wheel.
    """
    scratch = _scratch()
    source = os.path.join(scratch, "src")
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    dist = os.path.join(scratch, "dist")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", dist, source],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"building the wheel failed:\n{result.stdout}\n{result.stderr}")
    [wheel] = glob.glob(os.path.join(dist, "*.whl"))
    return wheel


def wheel_names() -> list[str]:
    """The file names inside the wheel."""
    with zipfile.ZipFile(build_wheel()) as archive:
        return archive.namelist()


def run(argv: list[str], pythonpath: str, cwd: str) -> subprocess.CompletedProcess[str]:
    """Run a command with only ``pythonpath`` added to the path and no SMSC_SIM_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSC_SIM_") and k != "PYTHONPATH"}
    env["PYTHONPATH"] = pythonpath
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)


class WheelTests(SynchronousTestCase):
    """What ``pip install smsc-sim`` installs."""

    def test_plugin_is_in_the_wheel(self) -> None:
        """The wheel has the twistd plugin file and no __init__.py that would hide Twisted's own plugins."""
        names = wheel_names()
        self.assertIn("twisted/plugins/smsc_sim_plugin.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertEqual([n for n in names if n.startswith("twisted/")], ["twisted/plugins/smsc_sim_plugin.py"])

    def test_package_and_no_tests_in_the_wheel(self) -> None:
        """The wheel carries the smsc_sim package (its tap module included) and not the tests."""
        names = wheel_names()
        self.assertIn("smsc_sim/__init__.py", names)
        self.assertIn("smsc_sim/tap.py", names)
        self.assertIn("smsc_sim/config_loader.py", names)
        self.assertIn("smsc_sim/load/__main__.py", names)  # python -m smsc_sim.load
        self.assertEqual([n for n in names if n.startswith("tests/") or "__pycache__" in n], [])

    def test_scenarios_are_shipped_in_the_package(self) -> None:
        """Every scenarios/*.yaml of the checkout is inside the package as smsc_sim/scenario/shipped/*.yaml."""
        expected = sorted(
            "smsc_sim/scenario/shipped/" + os.path.basename(p)
            for p in glob.glob(os.path.join(REPO, "scenarios", "*.y*ml"))
        )
        self.assertNotEqual(expected, [], "the checkout has no scenarios/*.yaml to ship")
        self.assertEqual(sorted(n for n in wheel_names() if n.startswith("smsc_sim/scenario/shipped/")), expected)

    def test_console_is_shipped_in_the_package(self) -> None:
        """Every file of the web console (pages, scripts, the vendored chart library and its licence) is in the wheel."""
        static = os.path.join(REPO, "smsc_sim", "console", "static")
        expected = sorted(f"smsc_sim/console/static/{name}" for name in os.listdir(static))
        self.assertIn("smsc_sim/console/static/index.html", expected)
        self.assertIn("smsc_sim/console/static/uPlot.LICENSE.txt", expected)
        self.assertEqual(sorted(n for n in wheel_names() if n.startswith("smsc_sim/console/static/")), expected)

    def test_entry_points(self) -> None:
        """The wheel declares the load generator script and the pytest plugin."""
        with zipfile.ZipFile(build_wheel()) as archive:
            [name] = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
            text = archive.read(name).decode()
        self.assertIn("smsc-sim-load = smsc_sim.load:main", text)
        self.assertIn("smsc_sim = smsc_sim.testing.pytest_plugin", text)

    def test_twistd_finds_the_plugin_of_the_installed_wheel(self) -> None:
        """Installed from the wheel alone, twistd finds smsc-sim and its help lists the options."""
        target = os.path.join(_scratch(), "site")
        install = run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-index",
                "--target",
                target,
                build_wheel(),
            ],
            pythonpath="",
            cwd=REPO,
        )
        self.assertEqual(install.returncode, 0, install.stderr)
        probe = (
            "import smsc_sim.tap, twisted.plugins.smsc_sim_plugin as plugin\n"
            "from twisted.plugin import getPlugins\n"
            "from twisted.application.service import IServiceMaker\n"
            "makers = {m.tapname: m for m in getPlugins(IServiceMaker)}\n"
            "print(makers['smsc-sim'].options is smsc_sim.tap.TwistdOptions)\n"
            "print(plugin.__file__)\nprint(smsc_sim.tap.__file__)\n"
        )
        where = run([sys.executable, "-c", probe], pythonpath=target, cwd=_scratch())
        self.assertEqual(where.returncode, 0, where.stderr)
        found, plugin_file, tap_file = where.stdout.split()
        self.assertEqual(found, "True")
        self.assertTrue(plugin_file.startswith(target), plugin_file)
        self.assertTrue(tap_file.startswith(target), tap_file)
        result = run(TWISTD + ["smsc-sim", "--help"], pythonpath=target, cwd=_scratch())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("--smpp1=", result.stdout)


class CheckoutTests(SynchronousTestCase):
    """Running twistd from the checkout."""

    def test_no_init_in_twisted_plugins(self) -> None:
        """The checkout has no twisted/__init__.py nor twisted/plugins/__init__.py."""
        self.assertTrue(os.path.isfile(os.path.join(REPO, "twisted", "plugins", "smsc_sim_plugin.py")))
        self.assertFalse(os.path.exists(os.path.join(REPO, "twisted", "__init__.py")))
        self.assertFalse(os.path.exists(os.path.join(REPO, "twisted", "plugins", "__init__.py")))

    def test_plugin_discovery(self) -> None:
        """twistd's plugin discovery lists smsc-sim, pointing at smsc_sim.tap."""
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        maker = makers["smsc-sim"]
        self.assertIs(maker.options, tap.TwistdOptions)
        self.assertIs(maker.makeService, tap.makeService)
        self.assertEqual(maker.description, "SMPP 3.4 SMSC simulator with HTTP control API.")

    def test_version(self) -> None:
        """The package has a version string, which the distribution takes."""
        self.assertRegex(smsc_sim.__version__, r"^\d+\.\d+\.\d+")

    def test_twistd_help(self) -> None:
        """`twistd smsc-sim --help` lists the options and exits 0."""
        result = run(TWISTD + ["smsc-sim", "--help"], pythonpath=REPO, cwd=_scratch())
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("Usage: twistd [options] smsc-sim [options]", result.stdout)
        for option in (
            "--config=",
            "--smpp1=",
            "--smpp2=",
            "--smpp0=",
            "--listen=",
            "--api=",
            "--api-token=",
            "--scenario=",
            "--seed=",
            "--trace",
            "--store=",
            "--account=",
        ):
            self.assertIn(option, result.stdout)

    def test_bad_config_stops_twistd_with_one_line(self) -> None:
        """A bad key in the file stops twistd with non-zero status, naming file, line and key, without a traceback."""
        scratch = _scratch()
        path = os.path.join(scratch, "bad.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("core:\n  routing: origin\n  retry_backof: 5\n")
        result = run(TWISTD + ["-n", "smsc-sim", "--config", path], pythonpath=REPO, cwd=scratch)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        [line] = result.stderr.splitlines()
        self.assertIn(f"{path}:3: core.retry_backof: unknown key", line)
        self.assertFalse(os.path.exists(os.path.join(scratch, "twistd.pid")))

    def test_start_mistakes_are_one_line_on_stderr(self) -> None:
        """
        A scenario mistake, a bad option value and an unknown option each stop twistd with exit status 2,
        nothing on stdout (no page of usage) and exactly one line on stderr naming the mistake.
        """
        scratch = _scratch()
        bad = os.path.join(scratch, "bad-scenario.yaml")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("name: bad\nrules:\n  - match: {destination: '44'}\n    sumbit_status: 8\n")
        for argv, said in (
            (["--scenario", bad], bad),
            (["--scenario", "no-such-scenario"], "no-such-scenario"),
            (["--seed", "x"], "invalid literal"),
            (["--bogus"], "--bogus"),
            (["--listen", "SMPP1"], "--listen wants NAME=ENDPOINT"),
        ):
            result = run(TWISTD + ["-n", "smsc-sim", *argv], pythonpath=REPO, cwd=scratch)
            self.assertEqual((result.returncode, result.stdout), (2, ""), argv)
            [line] = result.stderr.splitlines()
            self.assertTrue(line.startswith("twistd smsc-sim: "), line)
            self.assertIn(said, line)
        self.assertFalse(os.path.exists(os.path.join(scratch, "twistd.pid")))

    def test_version_names_smsc_sim_twisted_and_pdu3(self) -> None:
        """`twistd smsc-sim --version` prints smsc-sim's version with the Twisted and smpp.pdu3 versions."""
        import twisted
        from importlib.metadata import version

        result = run(TWISTD + ["smsc-sim", "--version"], pythonpath=REPO, cwd=_scratch())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"smsc-sim {smsc_sim.__version__} ", result.stdout)
        self.assertIn(f"Twisted {twisted.__version__}", result.stdout)
        self.assertIn(f"smpp.pdu3 {version('smpp.pdu3')}", result.stdout)
