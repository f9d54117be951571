"""A real browser drives notebook 05 in JupyterLab: every cell runs, the viewer reacts, no errors.

What a person does: open ``05_compare_visually.ipynb`` in JupyterLab, run all cells, move the tile
slider and pick another band composite, and watch the comparison figure change. Here JupyterLab
serves a temporary folder on 127.0.0.1 (a free port, a random token) and Debian's headless
``chromium`` is driven through ``/usr/bin/chromedriver`` with Selenium (nothing downloads a
browser: the driver is given explicitly, so selenium-manager never runs).

The notebook gets what a smoke run needs as papermill-style injected parameters: the tiny
synthetic twin of the test session and one freshly initialised tiny TDP-CR checkpoint, so the
test does not depend on notebooks 00–04 having run. Marked ``browser`` (deselected by default):
``make test-browser``, or ``make test-all``. Screenshots go to ``$TDPCR_BROWSER_SCREENSHOTS``
when that is set (else the test's temporary folder).

Needs: ``apt-get install chromium chromium-driver`` and ``pip install selenium jupyterlab``
(both in the ``dev`` extra); without them the test is skipped and says which is missing.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from tdpcr_lib.core.paths import NOTEBOOKS_DIR

pytestmark = pytest.mark.browser

CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOTEBOOK = "05_compare_visually.ipynb"
#: Seconds to wait for all cells of 05 to finish (a tiny model on 32 px tiles; 2 busy cores).
RUN_ALL_TIMEOUT = 420


def _missing() -> str | None:
    """Why the browser check cannot run here (``None``: it can)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        return "Chromium is not installed (Debian: apt-get install chromium chromium-driver)"
    if not CHROMEDRIVER.is_file():
        return f"{CHROMEDRIVER} is absent (Debian: apt-get install chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium; it is in the dev extra)"
    if importlib.util.find_spec("jupyterlab") is None:
        return "JupyterLab is not installed (pip install jupyterlab; it is in the dev extra)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with code {process.returncode}:\n" + log.read_text()[-3000:])
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"JupyterLab did not answer {url} within {timeout} s")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a folder with notebook 05 parameterised for a smoke run."""
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    from tdpcr_lib.datasets.synthetic.tiles import make_synthetic_luojiaset
    from tdpcr_lib.notebook.predict import prepare_checkpoint

    root = tmp_path_factory.mktemp("lab")
    # 100 tiles: two test tiles per cloud-cover bucket, so the tile slider has somewhere to go
    data_root = make_synthetic_luojiaset(root / "twin", n_tiles=100, size=32, seed=0)
    checkpoint, _ = prepare_checkpoint(root / "no_checkpoint", smoke=True, scratch_dir=root)
    notebook = load_notebook_node(str(NOTEBOOKS_DIR / NOTEBOOK))  # as papermill reads it
    notebook = parameterize_notebook(
        notebook,
        {
            "DATA_ROOT": str(data_root),
            "RUNS_DIR": str(root / "runs"),
            "REPORTS_DIR": str(root / "reports"),
            "SMOKE": True,
            "DEVICE": "cpu",
            "CHECKPOINTS": {"TDP-CR (untrained tiny)": str(checkpoint)},
            "SAMPLE_CROP": 32,
            "ZOOM": 2,
        },
    )
    (root / "notebooks").mkdir()
    nbformat.write(notebook, root / "notebooks" / NOTEBOOK)

    # Render every cell (no virtual scrolling), so the checks see off-screen cells too.
    # and no "get notified about Jupyter news?" prompt (nothing may be fetched from the web).
    for plugin, setting in (
        ("notebook-extension/tracker", '{"windowingMode": "none"}'),
        ("apputils-extension/notification", '{"fetchNews": "false"}'),
    ):
        path = root / "lab_settings" / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(setting)
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "TDPCR_HOME": str(root),
        "OMP_NUM_THREADS": "1",
        # private Jupyter config/state: no user settings, workspaces or extensions leak in
        "JUPYTER_CONFIG_DIR": str(root / "jupyter_config"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / "lab_settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / "lab_workspaces"),
    }
    log_path = root / "jupyterlab.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            "--LabApp.expose_app_in_browser=True",
            "--ServerApp.port_retries=0",
            # containers and CI often run as root, which Jupyter refuses unless told
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{base}/api/status?token={token}", process, log_path)
        yield {"url": f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}", "root": root}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1500,1800",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def _shots_dir(lab) -> Path:
    folder = Path(os.environ.get("TDPCR_BROWSER_SCREENSHOTS") or lab["root"] / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _wait(predicate, timeout: float, what: str, step: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"waited {timeout} s for {what}")


#: JavaScript: the state of the open notebook (cells run, errors, the viewer's image).
NOTEBOOK_STATE = """
const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
if (!panel || !panel.content || !panel.sessionContext || !panel.sessionContext.session) return null;
const kernel = panel.sessionContext.session.kernel;
const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(e => e.textContent);
const errors = [...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]')]
  .map(e => e.textContent.slice(0, 400));
const viewer = [...document.querySelectorAll('.jupyter-widgets-output-area img, .widget-output img')];
return {status: kernel ? kernel.status : 'none', prompts: prompts, errors: errors,
        viewer_images: viewer.map(e => e.src.length),
        viewer_src: viewer.length ? viewer[viewer.length - 1].src : null,
        viewer_drawn_width: viewer.length ? viewer[viewer.length - 1].getBoundingClientRect().width : null,
        viewer_natural_width: viewer.length ? viewer[viewer.length - 1].naturalWidth : null};
"""


def _state(driver) -> dict | None:
    return driver.execute_script(NOTEBOOK_STATE)


def _finished(driver) -> dict | None:
    state = _state(driver)
    if not state or state["status"] != "idle" or not state["prompts"]:
        return None
    if any("*" in p for p in state["prompts"]) or any(p.strip() in ("[ ]:", "") for p in state["prompts"]):
        return None
    return state


def _control(driver, label: str):
    """The ipywidgets control whose description contains ``label`` (case-insensitive)."""
    from selenium.webdriver.common.by import By

    for element in driver.find_elements(By.CSS_SELECTOR, ".jupyter-widgets.widget-inline-hbox"):
        labels = element.find_elements(By.CSS_SELECTOR, ".widget-label")
        if labels and label.lower() in labels[0].text.lower():
            return element
    raise AssertionError(f"no viewer control labelled {label!r}")


def _next_value(driver, control) -> None:
    """Move a slider one step right, or choose a dropdown's next option."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    selects = control.find_elements(By.TAG_NAME, "select")
    if selects:
        select = Select(selects[0])
        current = select.first_selected_option.text
        options = [o.text for o in select.options]
        select.select_by_visible_text(options[(options.index(current) + 1) % len(options)])
        return
    handle = control.find_element(By.CSS_SELECTOR, ".noUi-handle")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
    handle.click()
    handle.send_keys(Keys.ARROW_RIGHT)


def _console_errors(driver) -> list[str]:
    return [f"{e['level']}: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def test_notebook_05_runs_in_jupyterlab_and_the_viewer_reacts(lab, browser):
    shots = _shots_dir(lab)
    browser.get(lab["url"])
    _wait(
        lambda: _state(browser) and _state(browser)["status"] == "idle", 180, "the notebook to open with an idle kernel"
    )
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    state = _wait(lambda: _finished(browser), RUN_ALL_TIMEOUT, "all cells to run", step=2)
    browser.save_screenshot(str(shots / "05_after_run_all.png"))
    assert not state["errors"], "cells raised:\n" + "\n".join(state["errors"])
    first = _wait(lambda: (_state(browser) or {}).get("viewer_src"), 60, "the viewer's figure")
    images = browser.execute_script("return [...document.querySelectorAll('.jp-OutputArea-output img')].length")
    assert images >= 3  # static comparisons, the prompt maps and the viewer: all drawn as images
    # the picture keeps its pixel size (beside the metrics table it was squeezed to ~640 px of
    # 1,200): drawn width = the PNG's own width, within a pixel
    state = _state(browser)
    assert state["viewer_natural_width"] > 0
    assert abs(state["viewer_drawn_width"] - state["viewer_natural_width"]) <= 1, (
        f"viewer picture drawn {state['viewer_drawn_width']} px wide, its PNG is {state['viewer_natural_width']} px"
    )

    # another tile: the viewer runs the model on it and redraws
    _next_value(browser, _control(browser, "tile"))
    second = _wait(
        lambda: (lambda s: s if s and s != first else None)((_state(browser) or {}).get("viewer_src")),
        120,
        "the figure to change with the tile",
    )
    browser.save_screenshot(str(shots / "05_after_tile_change.png"))

    # another band composite: same tile, new colours
    _next_value(browser, _control(browser, "band"))
    _wait(
        lambda: (lambda s: s if s and s not in (first, second) else None)((_state(browser) or {}).get("viewer_src")),
        120,
        "the figure to change with the composite",
    )
    browser.save_screenshot(str(shots / "05_after_composite_change.png"))

    state = _state(browser)
    assert not state["errors"], "cells raised:\n" + "\n".join(state["errors"])
    errors = _console_errors(browser)
    assert not errors, "browser console errors:\n" + "\n".join(errors)
