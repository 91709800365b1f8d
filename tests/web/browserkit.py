"""Debian's chromium driven through its chromedriver: the browser of the console's tests.

Both programs come from Debian (``scripts/ensure-tools chromium``) and are given to selenium
by path, so Selenium Manager never runs and nothing is downloaded. `Browser` wraps a driver
with what the tests need: a phone or desktop viewport, pages opened by path, explicit waits,
scripts run in the page, form posts with the page's own cookies, and screenshots.
"""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

Size = Literal["phone", "desktop"]
#: Viewports (CSS pixels) of a technician's phone and of a wall screen.
SIZES: dict[Size, tuple[int, int]] = {"phone": (360, 740), "desktop": (1920, 1080)}


def missing_browser() -> str | None:
    """Why the browser cannot run here (a line saying what to install), or None."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not absent:
        return None
    return f"{' and '.join(absent)} not installed: run scripts/ensure-tools chromium"


def start_chromium(log: Path) -> webdriver.Chrome:
    """A headless chromium driven by Debian's chromedriver, its log in ``log``.

    ``--no-sandbox`` only when running as root, where chromium refuses to start with its
    sandbox (a container's CI).
    """
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        "--disable-background-networking",  # no update or safe-browsing traffic
        "--disable-component-update",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    return webdriver.Chrome(options=options, service=service)


class Browser:
    """A chromium page with explicit waits; `base_url` prefixes the paths given to `open`.

    Screenshots go to ``shots`` as ``<name>-<size>.png``.
    """

    def __init__(self, driver: webdriver.Chrome, shots: Path, base_url: str = "") -> None:
        self.driver = driver
        self.shots = shots
        self.base_url = base_url
        self.size: Size = "desktop"
        self.resize("desktop")

    def resize(self, size: Size) -> None:
        """Give the page the viewport of a phone or a desktop screen (no reload)."""
        width, height = SIZES[size]
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == "phone"},
        )
        self.size = size

    def open(self, path: str) -> None:
        """Load ``base_url + path`` and wait until the document has loaded."""
        self.driver.get(self.base_url + path)
        self.until(lambda: self.script("return document.readyState") == "complete", "the page")

    def path(self) -> str:
        """The current URL without `base_url`."""
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def script(self, source: str, *args: Any) -> Any:
        """Run JavaScript in the page and return what it returns."""
        return self.driver.execute_script(source, *args)

    def until(self, predicate: Callable[[], Any], what: str, timeout: float = 10) -> Any:
        """Wait until ``predicate()`` is truthy and return it; fail naming `what`."""
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(
                lambda _: predicate()
            )
        except TimeoutException:
            raise AssertionError(
                f"timed out after {timeout} s waiting for {what} on {self.driver.current_url}"
            ) from None

    def find(self, css: str, within: WebElement | None = None) -> WebElement | None:
        """The first element matching ``css`` (in ``within``), or None."""
        try:
            return (within or self.driver).find_element("css selector", css)
        except NoSuchElementException:
            return None

    def all(self, css: str, within: WebElement | None = None) -> list[WebElement]:
        """Every element matching ``css`` (in ``within``)."""
        return list((within or self.driver).find_elements("css selector", css))

    def wait_for(self, css: str, timeout: float = 10) -> WebElement:
        """The first element matching ``css``, once there is one."""
        found: WebElement = self.until(lambda: self.find(css), f"an element {css!r}", timeout)
        return found

    def text(self) -> str:
        """What the page shows (the body's rendered text)."""
        return str(self.script("return document.body ? document.body.innerText : ''"))

    def post(self, action: str, fields: dict[str, str]) -> tuple[int, str]:
        """POST a urlencoded form to ``action`` with the page's cookies; (status, body)."""
        result = self.driver.execute_async_script(
            """
            const [action, fields, done] = arguments;
            fetch(action, {method: 'POST', body: new URLSearchParams(fields),
                           credentials: 'same-origin', redirect: 'manual'})
              .then(async r => done([r.status, await r.text()]))
              .catch(e => done([0, String(e)]));
            """,
            action,
            fields,
        )
        return int(result[0]), str(result[1])

    def parses_to(self, html: str, css: str) -> bool:
        """Whether the HTML document ``html`` has an element matching ``css`` (parsed, not run)."""
        return bool(
            self.script(
                "return new DOMParser().parseFromString(arguments[0], 'text/html')"
                ".querySelector(arguments[1]) !== null",
                html,
                css,
            )
        )

    def form_fields(self, form: WebElement) -> dict[str, str]:
        """The fields a form would submit now, by name (the last value of a repeated name)."""
        pairs = self.script("return Array.from(new FormData(arguments[0]).entries())", form)
        return {str(name): str(value) for name, value in pairs}

    def screenshot(self, name: str) -> Path:
        """Save the whole page (beyond the viewport) as ``<name>-<size>.png`` and return it."""
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
        )
        path = self.shots / f"{name}-{self.size}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def screenshots(self, name: str) -> list[Path]:
        """Screenshots at phone and at desktop size, the page left at desktop size."""
        shots = []
        for size in ("phone", "desktop"):
            self.resize(size)
            shots.append(self.screenshot(name))
        return shots


def screenshot_dir(root: Path, group: str) -> Path:
    """A fresh ``test-output/screenshots/<group>`` under ``root`` (the repository)."""
    path = root / "test-output" / "screenshots" / group
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
