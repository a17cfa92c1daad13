"""The chat page in a real headless Chromium (Debian's chromium and chromium-driver, driven by
Selenium) against the app on a loopback port, serving the session graph's trained adapter.

Skipped where Chromium, its driver or Selenium is missing, except in CI (`CI` set), where a
missing browser fails the test: the page must be tested where the project is built."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from llm_assets.serving.app import create_app
from llm_assets.serving.engine import TransformersEngine
from llm_assets.serving.models import served_from_folder
from llm_assets.serving.store import ExchangeStore, Redactor, open_database

from ..conftest import serving_in_thread
from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow

TOKEN = "browser-token-0123456789abcdef"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _chromium_or_skip() -> tuple[str, str]:
    """Paths of the browser and its driver; skips (fails in CI) when either, or Selenium, is
    missing."""
    import importlib.util

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    missing = [
        name
        for name, found in (
            ("chromium", chromium),
            ("chromedriver", driver),
            ("selenium", importlib.util.find_spec("selenium")),
        )
        if not found
    ]
    if missing:
        message = (
            f"the chat page test needs {', '.join(missing)}: apt-get install chromium "
            "chromium-driver, and .venv/bin/pip install selenium"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert chromium and driver
    return chromium, driver


@contextmanager
def _browser(chromium: str, driver_path: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as profile:
        options = Options()
        options.binary_location = chromium
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        # An explicit driver path: Selenium Manager (which downloads drivers) never runs.
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def test_page_asks_for_the_token_answers_streamed_and_records_thumbs_up(
    graph: MaterializedGraph, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    chromium, driver_path = _chromium_or_skip()
    served = served_from_folder(graph.value("qlora_adapter")["path"], name="support-assistant")
    store = ExchangeStore(
        open_database(f"sqlite:///{tmp_path / 'feedback.db'}"),
        Redactor.from_cleaning(graph.profile.cleaning),
    )
    config = graph.profile.serving.model_copy(update={"default_max_tokens": 24})
    app = create_app(
        TransformersEngine.load(served.model),
        store,
        served,
        config,
        graph.profile.evaluation.generation,
        TOKEN,
    )

    with serving_in_thread(app) as url, _browser(chromium, driver_path) as browser:
        wait = WebDriverWait(browser, 60)
        # A token in the URL fragment is taken, then cleared from the address bar.
        browser.get(url + "/#token=" + TOKEN)
        wait.until(lambda b: b.find_element(By.ID, "model").text == "support-assistant")
        assert "token" not in browser.current_url
        assert not browser.find_element(By.ID, "token-form").is_displayed()

        browser.find_element(By.ID, "question").send_keys("How do I restore a deleted file?")
        browser.find_element(By.ID, "send").click()
        answer = wait.until(lambda b: b.find_element(By.CSS_SELECTOR, ".turn.assistant.done"))
        answer_text = answer.find_element(By.CLASS_NAME, "text").text
        response_id = answer.get_attribute("data-response-id")
        answer.find_element(By.CLASS_NAME, "thumbs-up").click()
        wait.until(lambda b: "Thanks" in answer.find_element(By.CLASS_NAME, "feedback-status").text)

        # Without a token in the URL or the session, the page asks for one.
        browser.execute_script("sessionStorage.clear()")
        browser.get(url + "/")
        wait.until(lambda b: b.find_element(By.ID, "token-form").is_displayed())
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "save-token").click()
        wait.until(lambda b: b.find_element(By.ID, "model").text == "support-assistant")
        assert not browser.find_element(By.ID, "token-form").is_displayed()

    with store.engine.connect() as connection:
        stored = connection.execute(
            sa.text(
                "select e.answer, f.thumbs from serving_feedback f join serving_exchanges e "
                "on e.response_id = f.response_id where f.response_id = :id"
            ),
            {"id": response_id},
        ).all()
    # The page shows what was stored (the browser folds runs of spaces when reading text).
    assert [(" ".join(text.split()), thumbs) for text, thumbs in stored] == [
        (" ".join(answer_text.split()), "up")
    ]
