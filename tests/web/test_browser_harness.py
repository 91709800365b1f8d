"""The browser harness itself: Debian's chromium loads a local page, runs its script, posts.

A tiny HTTP server in a thread serves one page with a form and a script; it answers a POST
with 403 and the body it received, which is what the console's tests check of refusals.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
from browserkit import SIZES, Browser, missing_browser, start_chromium
from selenium.webdriver.common.selenium_manager import SeleniumManager
from support import not_installed

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PAGE = b"""<!doctype html>
<html><head><meta name="viewport" content="width=device-width, initial-scale=1">
<title>harness</title></head>
<body>
<p id="out">not run</p>
<form id="f" method="post" action="/act">
  <input type="hidden" name="csrf" value="token-1">
  <label for="comment">Comment</label><textarea id="comment" name="comment"></textarea>
</form>
<script>document.getElementById('out').textContent = 'ran ' + (6 * 7);</script>
</body></html>
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self._answer(200, PAGE, "text/html")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self._answer(403, b"refused: " + body, "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def page_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser: Browser, page_server: str) -> Browser:
    browser.base_url = page_server
    browser.resize("desktop")
    browser.open("/")
    return browser


def test_selenium_manager_never_runs(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """The driver is Debian's, given by path: Selenium Manager (which downloads) is not asked."""

    def refuse(*args: object) -> None:
        raise AssertionError("Selenium Manager was asked for a driver or a browser")

    reason = missing_browser()
    if reason is not None:
        not_installed(reason)
    monkeypatch.setattr(SeleniumManager, "binary_paths", refuse)
    driver = start_chromium(tmp_path / "chromedriver.log")
    try:
        assert driver.capabilities["browserName"] in {"chrome", "chromium"}
    finally:
        driver.quit()


def test_chromium_loads_a_local_page_and_runs_its_script(page: Browser) -> None:
    """The page's script ran, and the driver reads its DOM."""
    assert page.wait_for("#out").text == "ran 42"
    assert page.script("return document.title") == "harness"
    assert "chrom" in str(page.script("return navigator.userAgent")).lower()


@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_viewport_is_a_phone_or_a_desktop_screen(page: Browser, size) -> None:
    """360x740 on a phone and 1920x1080 on a desktop, in CSS pixels."""
    page.resize(size)
    assert (page.script("return innerWidth"), page.script("return innerHeight")) == SIZES[size]


def test_screenshots_at_both_sizes_are_saved_as_png(page: Browser) -> None:
    """One PNG per size under the module's screenshot folder."""
    shots = page.screenshots("harness")
    assert [p.name for p in shots] == ["harness-phone.png", "harness-desktop.png"]
    for path in shots:
        assert path.parent == page.shots
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_post_from_the_page_returns_status_and_body(page: Browser) -> None:
    """A form's fields, posted with the page's cookies: the status and body come back."""
    form = page.wait_for("#f")
    page.find("#comment", form).send_keys("on my way")
    fields = page.form_fields(form)
    assert fields == {"csrf": "token-1", "comment": "on my way"}
    status, body = page.post(form.get_attribute("action"), fields)
    assert status == 403
    assert dict(parse_qsl(body.removeprefix("refused: "))) == fields
