"""
The web console in a real headless Chromium (Debian's chromium and
chromium-driver, driven by Selenium), against a simulator in a child
process on ephemeral 127.0.0.1 ports, with an smpplib ESME.

What a person at the console sees: the page loads without errors, an
outage started from the overview closes the instance's sessions and shows
within 2 s, a submit shows in the message list within 2 s with no reload,
a bad scenario YAML is marked at its line, the chart has points, and an MO
text holding ``<script>`` is shown as text.  Every wait has a deadline; the
browser and the simulator are stopped in ``finally``.

One screenshot of each page is saved to a temporary directory (printed,
and copied to ``$SMSC_SIM_CONSOLE_SCREENSHOTS`` when set: docs/img/ holds
copies).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterator

import pytest

pytestmark = pytest.mark.integration

CHROMIUM = "chromium"
DRIVER = "chromedriver"
INSTALL = (
    "the console's browser tests need Debian's chromium and chromium-driver: run "
    "'bash scripts/install-chromium.sh' as root (or: sudo apt-get install chromium chromium-driver), "
    "and 'pip install selenium' (in the test extra)"
)
#: the deadline of every wait on the page, unless a test says less
WAIT = 10.0


def _tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/lib/chromium")
    if found is None:
        pytest.fail(f"{name} is missing: {INSTALL}")
    return found


@pytest.fixture(scope="module")
def screenshots() -> Iterator[str]:
    """Where the screenshots go."""
    directory = tempfile.mkdtemp(prefix="smsc-sim-console-")
    yield directory
    print(f"\nconsole screenshots in {directory}")
    target = os.environ.get("SMSC_SIM_CONSOLE_SCREENSHOTS")
    if target:
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(directory):
            shutil.copy(os.path.join(directory, name), os.path.join(target, name))


@pytest.fixture(scope="module")
def smsc() -> Iterator[Any]:
    """A simulator in a child process, with receipts after 0.5 s."""
    from smsc_sim.testing.harness import SimulatorProcess

    with SimulatorProcess(seed=1) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium at 1280x800 with its console log kept; quit in finally."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail(f"selenium is missing: {INSTALL}")
    binary = _tool(CHROMIUM)
    driver_path = _tool(DRIVER)
    profile = tempfile.mkdtemp(prefix="smsc-sim-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(WAIT)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(check: Callable[[], Any], seconds: float = WAIT, what: str = "the page") -> Any:
    """Poll ``check`` until it returns something true, or fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    last: Any = None
    while True:
        try:
            last = check()
        except Exception as error:  # an element not there yet
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s (last: {last!r})")
        time.sleep(0.05)


def errors_in_log(driver: Any) -> list[dict[str, Any]]:
    """The browser console's errors since the last call."""
    return [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "ERROR")]


def open_page(driver: Any, smsc: Any, page: str) -> None:
    """Show a page by its tab, as a person would."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'#tabs button[data-page="{page}"]').click()
    wait_for(lambda: driver.find_element(By.ID, f"page-{page}").is_displayed(), what=f"the {page} page")


def live(driver: Any) -> bool:
    return bool(driver.execute_script("return window.smscConsole && window.smscConsole.streamOpen"))


def bind_smpplib(smsc: Any, instance: str = "SMPP1") -> Any:
    import smpplib.client

    host, port = smsc.address(instance)
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transceiver(system_id=smsc.system_id, password=smsc.password)
    return client


def close_client(client: Any) -> None:
    try:
        client.disconnect()
    except Exception:  # already closed by the simulator
        pass


@pytest.fixture(scope="module")
def console(browser: Any, smsc: Any) -> Any:
    """The console loaded, its live stream open."""
    browser.get(smsc.api_url + "/")
    wait_for(lambda: live(browser), what="the live stream")
    return browser


def test_console_loads_without_errors(console: Any, smsc: Any, screenshots: str) -> None:
    """The console loads from the package with the live stream open and no error in the browser's console log."""
    from selenium.webdriver.common.by import By

    rows = wait_for(lambda: console.find_elements(By.CSS_SELECTOR, "#instances tbody tr[data-instance]"),
                    what="the instances table")
    assert {row.get_attribute("data-instance") for row in rows} >= {"SMPP1", "SMPP2"}
    assert errors_in_log(console) == []


def test_crash_from_the_console_closes_sessions(console: Any, smsc: Any, screenshots: str) -> None:
    """Crashing SMPP1 from its outage control closes its bound session (seen through the API) and the overview shows it within 2 s."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    client = bind_smpplib(smsc, "SMPP1")
    try:
        smsc.wait_for_bind(instance="SMPP1", timeout=5)
        open_page(console, smsc, "overview")
        wait_for(lambda: console.find_element(By.CSS_SELECTOR, '#bound tbody td').text == "SMPP1",
                 what="the bound session in the overview")
        row = console.find_element(By.CSS_SELECTOR, '#instances tr[data-instance="SMPP1"]')
        Select(row.find_element(By.NAME, "mode")).select_by_visible_text("crash")
        row.find_element(By.NAME, "duration").send_keys("60")
        clicked = time.monotonic()
        row.find_element(By.CSS_SELECTOR, "button.outage-start").click()
        wait_for(lambda: console.find_element(By.CSS_SELECTOR, '#instances tr[data-instance="SMPP1"] td.state').text
                 == "crash", seconds=2.0, what="SMPP1 shown as crashed")
        assert time.monotonic() - clicked < 2.0
        wait_for(lambda: smsc.sessions(instance="SMPP1") == [], seconds=5, what="SMPP1's sessions closed")
        assert smsc.instance("SMPP1")["state"] == "crash"
        wait_for(lambda: "no bound session" in console.find_element(By.ID, "bound").text, seconds=2.0,
                 what="the overview without the session")
        console.save_screenshot(os.path.join(screenshots, "overview-crash.png"))
        console.find_element(By.CSS_SELECTOR, '#instances tr[data-instance="SMPP1"] button.outage-end').click()
        wait_for(lambda: console.find_element(By.CSS_SELECTOR, '#instances tr[data-instance="SMPP1"] td.state').text
                 == "up", what="SMPP1 up again")
    finally:
        close_client(client)
        smsc.end_outage("SMPP1")
    assert errors_in_log(console) == []


def test_submit_appears_in_the_message_list(console: Any, smsc: Any, screenshots: str) -> None:
    """A submit from smpplib shows in the open message list within 2 s, without a reload; its detail shows its history."""
    from selenium.webdriver.common.by import By

    open_page(console, smsc, "messages")
    marker = console.execute_script("return performance.timeOrigin")
    client = bind_smpplib(smsc, "SMPP1")
    try:
        sent = time.monotonic()
        client.send_message(source_addr="447700900001", destination_addr="447700900777",
                            short_message=b"seen in the console", registered_delivery=1)
        row = wait_for(lambda: [r for r in console.find_elements(By.CSS_SELECTOR, "#messages tbody tr[data-message]")
                                if "447700900777" in r.text], seconds=2.0, what="the message in the list")[0]
        assert time.monotonic() - sent < 2.0
        assert console.execute_script("return performance.timeOrigin") == marker, "the page was reloaded"
        row.click()
        wait_for(lambda: "seen in the console" in console.find_element(By.ID, "message-detail").text,
                 what="the message's detail")
        wait_for(lambda: "DELIVERED" in console.find_element(By.ID, "message-detail").text,
                 what="the receipt in the detail")
        console.save_screenshot(os.path.join(screenshots, "messages.png"))
        open_page(console, smsc, "sessions")
        wait_for(lambda: console.find_elements(By.CSS_SELECTOR, "#sessions tbody tr[data-session]"), what="a session")
        wait_for(lambda: "submit_sm" in console.find_element(By.ID, "sessions").text, what="the session's last PDUs")
        console.save_screenshot(os.path.join(screenshots, "sessions.png"))
        open_page(console, smsc, "pdus")
        wait_for(lambda: "deliver_sm" in console.find_element(By.ID, "pdus").text, what="the PDU list")
        console.save_screenshot(os.path.join(screenshots, "pdus.png"))
    finally:
        close_client(client)
    assert errors_in_log(console) == []


def test_chart_has_points(console: Any, smsc: Any, screenshots: str) -> None:
    """The traffic chart has data points from the stats ticks, the submit among them."""
    open_page(console, smsc, "overview")
    points = wait_for(lambda: console.execute_script(
        "const c = window.smscConsole.chart; return c && c.data[0].length >= 3 ? c.data : null"),
        what="three chart points")
    assert len(points) >= 3
    assert len(points[0]) == len(points[1]) == len(points[2])
    assert max(points[1]) > 0, "the submit is in the submits/s series"
    console.save_screenshot(os.path.join(screenshots, "overview.png"))


def test_bad_yaml_shows_its_line(console: Any, smsc: Any, screenshots: str) -> None:
    """A scenario YAML with a mistake on line 3 is refused and line 3 is marked in the console."""
    from selenium.webdriver.common.by import By

    from selenium.webdriver.support.ui import Select

    open_page(console, smsc, "scenario")
    wait_for(lambda: console.find_element(By.ID, "scenario-name").text, what="the active scenario")
    # switching to a shipped scenario from the console shows its rules
    def pick_error_codes() -> bool:
        Select(console.find_element(By.ID, "scenario-names")).select_by_visible_text("error-codes")
        return True

    wait_for(pick_error_codes, what="the shipped scenarios listed")
    console.find_element(By.CSS_SELECTOR, "#scenario-switch button").click()
    wait_for(lambda: console.find_element(By.ID, "scenario-name").text == "error-codes", what="the switch")
    assert smsc.scenario()["name"] == "error-codes"
    assert wait_for(lambda: console.find_elements(By.CSS_SELECTOR, "#rules tbody tr td.num"), what="the rules and hits")
    area = console.find_element(By.ID, "yaml-text")
    area.clear()
    area.send_keys("name: broken\nreceipt:\n  stat: NOPE\n  delay: 1s\n")
    console.find_element(By.CSS_SELECTOR, "#scenario-yaml button[type=submit]").click()
    marked = wait_for(lambda: console.find_element(By.CSS_SELECTOR, "#yaml-lines .yaml-error-line"),
                      what="the marked line")
    assert marked.get_attribute("data-line") == "3"
    assert "NOPE" in marked.text
    assert console.find_element(By.ID, "yaml-error-message").text
    console.save_screenshot(os.path.join(screenshots, "scenario.png"))
    assert smsc.scenario()["name"] == "error-codes", "a refused YAML changes nothing"
    smsc.load_scenario(name="default")
    errors = [e for e in errors_in_log(console) if "400" not in e["message"]]
    assert errors == []


def test_mo_text_is_shown_as_text(console: Any, smsc: Any, screenshots: str) -> None:
    """An MO whose text is a <script> element is sent, and shown in the message detail as text, never run."""
    from selenium.webdriver.common.by import By

    payload = "<script>window.injected = 1</script><img src=x onerror=window.injected=2>"
    open_page(console, smsc, "mo")
    field = console.find_element(By.CSS_SELECTOR, "#mo-form textarea[name=text]")
    field.clear()
    field.send_keys(payload)
    console.find_element(By.CSS_SELECTOR, "#mo-form button[type=submit]").click()
    link = wait_for(lambda: console.find_element(By.CSS_SELECTOR, "#mo-result a"), what="the MO's id")
    console.save_screenshot(os.path.join(screenshots, "mo.png"))
    link.click()
    # the detail is redrawn as the message changes: find it afresh each time
    wait_for(lambda: console.find_element(By.CSS_SELECTOR, "#message-detail .message-text").text == payload,
             what="the MO's text shown as typed")
    wait_for(lambda: [r for r in console.find_elements(By.CSS_SELECTOR, "#messages tbody tr[data-message]")
                      if "<script>" in r.text], what="the MO in the list, as text")
    assert console.find_elements(By.CSS_SELECTOR, "#page-messages script, #page-messages img") == []
    assert console.execute_script("return window.injected === undefined")
    assert errors_in_log(console) == []


def test_conformance_page_shows_the_judges_findings(console: Any, smsc: Any, screenshots: str) -> None:
    """
    An ESME that binds TX on SMPP1 only, asks for a receipt of a '+'-prefixed
    destination and hangs up without unbind: the Conformance page shows the
    verdict fail and each finding's code; its button forgets them.
    """
    import smpplib.client
    from selenium.webdriver.common.by import By

    smsc.reset_conformance()
    host, port = smsc.address("SMPP1")
    client = smpplib.client.Client(host, port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transmitter(system_id=smsc.system_id, password=smsc.password)
    client.send_message(source_addr="447700900001", destination_addr="+447700900888",
                        short_message=b"judged", registered_delivery=1)
    client.read_once()  # the submit_sm_resp
    client._socket.close()  # gone without unbind, as a crashed ESME would  # noqa: SLF001
    wait_for(lambda: "no-unbind" in smsc.conformance()["counts"], what="the judge's no-unbind finding")
    tab = console.find_element(By.CSS_SELECTOR, '#tabs button[data-page="conformance"]')
    wait_for(lambda: tab.is_displayed(), what="the Conformance tab")
    open_page(console, smsc, "conformance")
    # the page fetches the report as it opens: wait for the fresh one, not the one drawn at load
    wait_for(lambda: console.find_element(By.ID, "conformance-verdict").text.startswith("verdict: fail"),
             seconds=2.0, what="the verdict fail")
    text = console.find_element(By.ID, "conformance").text
    for code in ("tx-without-rx", "single-instance", "address-format", "no-unbind"):
        assert code in text, code
    console.save_screenshot(os.path.join(screenshots, "conformance.png"))
    console.find_element(By.ID, "conformance-reset").click()
    wait_for(lambda: console.find_element(By.ID, "conformance-verdict").text.startswith("verdict: pass"),
             what="the findings forgotten")
    assert smsc.conformance()["findings"] == []
    assert errors_in_log(console) == []


def test_narrow_window(console: Any, smsc: Any, screenshots: str) -> None:
    """In a narrow window (420 px) every page fits its width: tables scroll inside their box, the page does not."""
    from selenium.webdriver.common.by import By

    console.set_window_size(420, 800)
    try:
        for page in ("overview", "sessions", "messages", "scenario", "mo", "pdus"):
            open_page(console, smsc, page)
            width = console.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
            wide = console.execute_script(
                "return [...document.querySelectorAll('body *')].filter(e => e.scrollWidth > window.innerWidth + 1)"
                ".slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ' ' + e.scrollWidth)")
            assert width <= 1, f"the {page} page is {width} px wider than the window: {wide}"
        open_page(console, smsc, "overview")
        console.save_screenshot(os.path.join(screenshots, "overview-narrow.png"))
        assert console.find_element(By.ID, "chart").size["width"] <= 420
    finally:
        console.set_window_size(1280, 800)


def test_token_is_asked_and_sent_as_a_header(browser: Any, screenshots: str) -> None:
    """With a token configured, the console asks for it, keeps it for the tab, and the live stream opens with it."""
    from selenium.webdriver.common.by import By

    from smsc_sim.testing.harness import SimulatorProcess

    with SimulatorProcess(token="console-token") as guarded:
        browser.get(guarded.api_url + "/")
        dialog = wait_for(lambda: browser.find_element(By.ID, "token-dialog"), what="the token dialog")
        wait_for(lambda: dialog.is_displayed(), what="the token dialog shown")
        browser.find_element(By.ID, "token-input").send_keys("console-token")
        browser.find_element(By.CSS_SELECTOR, "#token-form button").click()
        wait_for(lambda: live(browser), what="the live stream with the token")
        assert browser.execute_script("return sessionStorage.getItem('smsc-sim-token')") == "console-token"
        # the 401 that asked for the token is the only error logged
        assert all("401" in e["message"] for e in errors_in_log(browser))
