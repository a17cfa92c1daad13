"""The screenshot of the asset graph in the README: Dagster's own UI, rendered by headless
Chromium, for the default profile (nothing needs to be materialized).

    .venv/bin/python docs/asset_graph_screenshot.py        # writes docs/asset-graph.png
"""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "asset-graph.png"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise SystemExit(f"the Dagster UI did not answer at {url} within {seconds:.0f} s")


def _click_text(browser, text: str) -> bool:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    found = browser.find_elements(By.XPATH, f"//*[normalize-space(text())='{text}']")
    if found:
        found[0].click()
        time.sleep(2)
    return bool(found)


def main() -> None:
    from selenium import webdriver

    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="asset-graph-") as home:
        env = {**os.environ, "DAGSTER_HOME": home, "LLM_ASSETS_STATE_DIR": f"{home}/var"}
        webserver = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster-webserver"),
                "-m",
                "llm_assets.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/server_info", 120)
            options = webdriver.ChromeOptions()
            options.binary_location = shutil.which("chromium") or ""
            for flag in ("--headless=new", "--no-sandbox", "--window-size=2200,1100"):
                options.add_argument(flag)
            service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
            browser = webdriver.Chrome(options=options, service=service)
            try:
                browser.get(f"http://127.0.0.1:{port}/asset-groups")
                time.sleep(15)  # the graph lays itself out after the page loads
                _click_text(browser, "Skip")  # the newsletter prompt of a fresh instance
                time.sleep(5)
                browser.save_screenshot(str(OUTPUT))
            finally:
                browser.quit()
        finally:
            webserver.terminate()
            webserver.wait(timeout=30)
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
