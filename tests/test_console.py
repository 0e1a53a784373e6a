"""
The console's files as the API serves them, in memory (StubTreq): what a
browser gets at ``/`` and ``/console/<file>``, the headers that keep the
page to its own server, and the API's Host and Origin rules on them.
"""

from __future__ import annotations

import re
from typing import Any

import treq

from smsc_sim.console import CONTENT_SECURITY_POLICY
from tests.test_api import BASE, APITestCase


class ConsoleFilesTests(APITestCase):
    token = "t0ken"

    def fetch(self, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
        """A request with no token (a browser loading the page); returns the code, headers and body."""
        answer = self.smsc.http.request(method, BASE + path, headers=headers or {})
        self.smsc.flush()
        response = self.successResultOf(answer)
        return response.code, response.headers, self.successResultOf(treq.content(response))

    def test_index_at_root(self) -> None:
        """GET / answers the console's page as HTML, without a token, with a same-origin-only Content-Security-Policy."""
        code, headers, body = self.fetch("/")
        self.assertEqual(code, 200)
        self.assertEqual(headers.getRawHeaders("content-type"), ["text/html; charset=utf-8"])
        self.assertEqual(headers.getRawHeaders("content-security-policy"), [CONTENT_SECURITY_POLICY])
        self.assertEqual(headers.getRawHeaders("x-content-type-options"), ["nosniff"])
        self.assertIn(b"<title>smsc-sim console</title>", body)
        self.assertEqual(self.fetch("/console/")[2], body)

    def test_every_referenced_file_is_served(self) -> None:
        """Every script and style the page names is served with its type, and none comes from another site."""
        _, _, page = self.fetch("/")
        references = re.findall(rb'(?:src|href)="([^"]+)"', page)
        self.assertIn(b"/console/app.js", references)
        self.assertIn(b"/console/uPlot.iife.min.js", references)
        for reference in references:
            if reference.startswith(b"data:") or reference.startswith(b"#"):
                continue
            self.assertTrue(reference.startswith(b"/console/"), reference)
            code, headers, _ = self.fetch(reference.decode())
            self.assertEqual(code, 200, reference)
            kind = headers.getRawHeaders("content-type")[0]
            self.assertTrue(kind.startswith("text/javascript" if reference.endswith(b".js") else "text/css"), kind)

    def test_uplot_licence_is_shipped(self) -> None:
        """The vendored chart library's MIT licence is served next to it."""
        code, _, body = self.fetch("/console/uPlot.LICENSE.txt")
        self.assertEqual(code, 200)
        self.assertIn(b"MIT License", body)

    def test_unknown_file_and_escape_attempts_are_404(self) -> None:
        """A file the console does not have, or a path that tries to leave its directory, is a JSON 404."""
        for path in ("/console/nope.js", "/console/../app.py", "/console/%2e%2e%2fapp.py", "/console/sub/app.js"):
            code, headers, body = self.fetch(path)
            self.assertEqual(code, 404, path)
            self.assertEqual(headers.getRawHeaders("content-type"), ["application/json"], path)
            self.assertNotIn(b"import", body)

    def test_other_methods_are_405(self) -> None:
        """The console's files are read-only: POST is 405 with Allow: GET."""
        code, headers, _ = self.fetch("/", "POST")
        self.assertEqual(code, 405)
        self.assertEqual(headers.getRawHeaders("allow"), ["GET"])

    def test_foreign_host_and_origin_are_refused(self) -> None:
        """The API's DNS-rebinding and cross-site rules apply to the console too: 421 for a foreign Host, 403 for a foreign Origin."""
        self.assertEqual(self.fetch("/", headers={"Host": "evil.example"})[0], 421)
        self.assertEqual(self.fetch("/", headers={"Origin": "http://evil.example"})[0], 403)

    def test_api_still_needs_the_token(self) -> None:
        """Serving the console changes nothing for the API: a call without the token is still 401."""
        self.assertEqual(self.fetch("/api/v1/instances")[0], 401)
        self.assertEqual(self.fetch("/api/v1/health/live")[0], 200)

    def test_script_never_writes_html(self) -> None:
        """The console's script puts data in the page as text only: it never assigns innerHTML or outerHTML, nor calls document.write."""
        _, _, script = self.fetch("/console/app.js")
        for sink in (b"innerHTML", b"outerHTML", b"insertAdjacentHTML", b"document.write", b"eval("):
            self.assertNotIn(sink, script)
