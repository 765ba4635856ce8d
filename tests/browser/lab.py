"""Start JupyterLab headless on loopback in a temporary root, and drive notebook cells."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
IN_CI = bool(os.environ.get("CI"))

# In CI (``CI`` set) a missing chromium or playwright is a failure, not a skip.
BROWSER_MARKS = [
    pytest.mark.skipif(not os.path.exists(CHROMIUM) and not IN_CI,
                       reason=f"{CHROMIUM} is missing (apt-get install chromium)"),
    pytest.mark.timeout(120),
]


@dataclass
class Lab:
    url: str
    token: str
    root: Path
    log: Path

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"


def write_notebook(path: Path, cells: list[str]) -> None:
    """A minimal nbformat-4 notebook with these code cells, for the python3 kernel."""
    nb = {"nbformat": 4, "nbformat_minor": 5,
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None,
                     "outputs": [], "source": src} for i, src in enumerate(cells)]}
    path.write_text(json.dumps(nb, indent=1))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(root: Path, env: dict[str, str], timeout: float = 60) -> Iterator[Lab]:
    """Run ``jupyter lab`` on 127.0.0.1 with a random token; stopped (by its pid) on exit."""
    token, port = secrets.token_hex(16), _free_port()
    private = root.parent / f"{root.name}-jupyter"
    for sub in ("config", "runtime", "workspaces", "settings/@jupyterlab/apputils-extension"):
        (private / sub).mkdir(parents=True, exist_ok=True)
    # no "get notified about news?" toast over the screenshots
    (private / "settings/@jupyterlab/apputils-extension/notification.jupyterlab-settings"
     ).write_text('{"fetchNews": "false", "checkForUpdates": false}')
    full_env = {**os.environ, **env, "JUPYTER_CONFIG_DIR": str(private / "config"),
                "JUPYTER_RUNTIME_DIR": str(private / "runtime"), "JUPYTER_PLATFORM_DIRS": "1",
                "JUPYTERLAB_SETTINGS_DIR": str(private / "settings")}
    log = private / "lab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--ServerApp.port_retries=0",
           f"--LabApp.workspaces_dir={private / 'workspaces'}",
           "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root
        cmd.append("--allow-root")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{lab.url}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jupyter lab did not start: {log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@contextmanager
def notebook_page(root: Path, cells: list[str], env: dict[str, str], config) -> Iterator:
    """JupyterLab with a notebook of ``cells`` open in headless chromium, its kernel ready.

    Screenshots (``shot``) go to ``build/screenshots`` under the pytest root."""
    if not IN_CI:
        pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    shots = config.rootpath / "build" / "screenshots"

    write_notebook(root / "test.ipynb", cells)
    with jupyter_lab(root, env) as lab, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(20_000)
            page.goto(lab.notebook_url("test.ipynb"))
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            wait_for(lambda: kernel_idle(lab), 30, "the notebook's kernel to be ready", 0.3)
            page.shots = shots
            shots.mkdir(parents=True, exist_ok=True)
            yield page
        finally:
            browser.close()


def shot(page, locator, name: str) -> Path:
    path = page.shots / name
    locator.screenshot(path=str(path))
    print(f"screenshot: {path}")
    return path


def assert_grows(page, locator) -> None:
    """The text in ``locator`` appears, then grows while the reply streams."""
    wait_for(lambda: text_length(locator) > 5, 10, "the first streamed text")
    sizes = [text_length(locator)]
    for _ in range(4):
        page.wait_for_timeout(200)
        sizes.append(text_length(locator))
    assert sizes[-1] > sizes[0], f"streamed text did not grow: {sizes}"


def kernel_idle(lab: Lab) -> bool:
    """True once the server reports a session whose kernel is idle (started and ready)."""
    try:
        with urllib.request.urlopen(f"{lab.url}/api/sessions?token={lab.token}", timeout=2) as r:
            sessions = json.load(r)
    except OSError:
        return False
    return any(s.get("kernel", {}).get("execution_state") == "idle" for s in sessions)


def start_cell(page, index: int) -> None:
    """Run code cell ``index`` (Shift+Enter) without waiting for it to finish."""
    page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def output_area(page, index: int):
    """The output area of cell ``index``."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


def run_cell(page, index: int, timeout: float = 30) -> None:
    """Run code cell ``index`` of the open notebook (Shift+Enter) and wait until it has run."""
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    prompt = cell.locator(".jp-InputPrompt")
    deadline = time.monotonic() + timeout
    while True:
        cell.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        try:  # "[*]:" while running, "[n]:" when done
            page.wait_for_function("el => /\\[\\d+\\]/.test(el.textContent)",
                                   arg=prompt.element_handle(), timeout=10_000)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise


def text_length(locator) -> int:
    """Characters currently shown in ``locator`` (0 when it is not there)."""
    return len(locator.inner_text()) if locator.count() else 0


def wait_for(predicate, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
