"""Fixtures of the browser tests: Debian's chromium and a running console stack.

- ``browser``: one headless chromium per test module (`browserkit.Browser`), desktop size to
  begin with; screenshots go to ``test-output/screenshots/<module>/`` in the repository
  (git-ignored), replaced on each run. Skipped when chromium or chromedriver is not
  installed (failed in CI, like a missing server).
- ``stack``: per module, a pipeline (`meshwatch run`) and the console (`meshwatch web`) on
  the session's mosquitto, with a small fleet publishing live and one fault to turn on
  (`consolekit`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from browserkit import Browser, missing_browser, screenshot_dir, start_chromium
from consolekit import Stack, start_stack
from support import not_installed

from meshwatch.localservers import Mosquitto

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


@pytest.fixture(scope="module")
def stack(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Pipeline, console and a live fleet, for the module; stopped after its last test."""
    unique = f"w{uuid.uuid4().hex[:10]}"
    with start_stack(mosquitto, tmp_path_factory.mktemp("stack"), unique) as running:
        yield running
