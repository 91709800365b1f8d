"""Fixtures of the browser tests: Debian's chromium.

- ``browser``: one headless chromium per test module (`browserkit.Browser`), desktop size to
  begin with; screenshots go to ``test-output/screenshots/<module>/`` in the repository
  (git-ignored), replaced on each run. Skipped when chromium or chromedriver is not
  installed (failed in CI, like a missing server).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browserkit import Browser, missing_browser, screenshot_dir, start_chromium
from support import not_installed

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def browser(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    """A headless chromium shared by the module's tests (each test logs in as it needs)."""
    reason = missing_browser()
    if reason is not None:
        not_installed(reason)
    module = request.module.__name__.rsplit(".", 1)[-1]
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    driver = start_chromium(log)
    try:
        yield Browser(driver, screenshot_dir(REPOSITORY, module))
    finally:
        driver.quit()
