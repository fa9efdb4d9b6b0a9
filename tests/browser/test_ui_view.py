"""The researcher's view, in a real browser: a small search runs to its end on this machine
(real children on digits, the embedded SQLite store), ``actsearch-ctl ui`` serves it, and headless
Chromium (the distribution's ``chromium`` and ``chromium-driver``, through Selenium) opens the URL
the command prints. The runs table must show the winner's expression and accuracy without any
column picked by hand, and the parent run's page its description naming the winner.

Skipped, with the reason, where Chromium, its driver or Selenium is not installed.
``ACTSEARCH_SCREENSHOTS=<dir>`` saves the pages seen (the PNGs in docs/img come from here).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
try:
    import selenium
except ImportError:
    selenium = None

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None or selenium is None,
    reason="needs headless Chromium: apt-get install chromium chromium-driver, and "
           "pip install selenium",
)]

SEARCH = {
    "name": "uiview",
    "space": {"units": 1, "unary": ["id", "relu", "abs", "sin", "sigmoid", "mul_beta"],
              "binary": ["add", "max", "mul", "sigmul"]},
    "strategy": {"name": "random"},
    "budget": {"trials": 4, "max_samples": 40},
    "parallelism": 1,
    "packing": 4,  # one process trains the four: quick on a loaded machine too
    "generation": 4,
    "seed": 3,
    "child": {"model": "mlp", "dataset": "digits", "steps": 20, "batch_size": 32, "lr": 0.05,
              "crop_padding": 0, "flip": False, "device": "cpu", "log_every": 5},
}


def _ctl(*args: str, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A finished search, ``actsearch-ctl ui`` serving it, and the URL it printed."""
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("ui")
    spec = root / "uiview.yaml"
    spec.write_text(yaml.safe_dump(SEARCH))
    done = _ctl("run", str(spec), "--quiet", "--workdir", str(root / "work"), cwd=root, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    url_line = [ln for ln in done.stdout.splitlines() if "then open" in ln]
    assert url_line and "workflowType=machine_learning" in url_line[0], done.stdout[-2000:]
    client = MlflowClient(f"sqlite:///{root / 'work' / 'mlflow.db'}")
    exp = client.get_experiment_by_name("actsearch")
    parent = client.search_runs([exp.experiment_id], "tags.`actsearch.role` = 'search'")[0]

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "ui", str(spec), "--workdir",
         str(root / "work"), "--port", str(port)], cwd=root, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        start_new_session=True)  # its own process group: the server's workers end with it
    try:
        assert proc.stdout is not None
        url = ""
        while not url:
            line = proc.stdout.readline()
            assert line, "actsearch-ctl ui exited before printing a URL"
            url = line.strip() if line.strip().startswith("http") else ""
        _wait_http(f"http://127.0.0.1:{port}/health", 120)
        yield {"url": url, "parent": parent, "port": port, "client": client}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _wait_http(url: str, seconds: float) -> None:
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1600,1000"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_text(driver: Any, wanted: list[str], seconds: float = 90) -> str:
    """The page's visible text once it shows every string in ``wanted``."""
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        text = driver.find_element("tag name", "body").text
        if all(w in text for w in wanted):
            return str(text)
        time.sleep(1)
    missing = [w for w in wanted if w not in text]
    raise AssertionError(f"not shown after {seconds} s: {missing}; page text: {text[:3000]}")


def _shot(driver: Any, name: str) -> None:
    out = os.environ.get("ACTSEARCH_SCREENSHOTS")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(out) / name))


def test_the_runs_table_shows_the_winner_and_its_accuracy(finished: dict[str, Any],
                                                          browser: Any) -> None:
    tags = finished["parent"].data.tags
    best_math, best_acc = tags["actsearch.best_math"], tags["actsearch.best_val_accuracy"]
    browser.get(finished["url"])
    text = _wait_text(browser, [best_math, best_acc])
    assert "uiview" in text
    # the default view is the runs table, not the GenAI overview
    assert not re.search(r"\bTraces\b.*\bNo traces\b", text, re.S)
    _shot(browser, "runs-table.png")


def test_the_parent_run_page_states_the_winner(finished: dict[str, Any], browser: Any) -> None:
    parent = finished["parent"]
    tags = parent.data.tags
    exp = parent.info.experiment_id
    browser.get(f"http://127.0.0.1:{finished['port']}/#/experiments/{exp}/runs/"
                f"{parent.info.run_id}")
    _wait_text(browser, ["best function", tags["actsearch.best_math"],
                         tags["actsearch.best_val_accuracy"]])
    _shot(browser, "parent-run.png")


def test_the_compare_view_opens_on_the_trials(finished: dict[str, Any], browser: Any) -> None:
    client, parent = finished["client"], finished["parent"]
    exp = parent.info.experiment_id
    children = client.search_runs([exp], "tags.`actsearch.role` = 'trial'")
    ids = [r.info.run_id for r in children if "actsearch.duplicate_of" not in r.data.tags][:4]
    quoted = ",".join(f'"{i}"' for i in ids)
    browser.get(f"http://127.0.0.1:{finished['port']}/#/compare-runs?runs=[{quoted}]"
                f"&experiments=[\"{exp}\"]")
    names = [r.info.run_name for r in children if r.info.run_id in ids]
    _wait_text(browser, [names[0].split(" · ")[0], "unit1.binary"])
    assert "Something went wrong" not in browser.find_element("tag name", "body").text
    _shot(browser, "compare-view.png")
