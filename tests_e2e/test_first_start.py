"""End-to-end: the course opens calmly, as `python3 course.py lab` starts it.

The ``course_lab`` fixture (conftest.py) starts JupyterLab with course.py's own arguments and
settings overrides, in fresh settings folders as on a learner's first start, and gives the
address course.py's browser would open. Once day 1 is open and its kernel idle, and a few seconds
later (JupyterLab asks about its news in a toast shortly after start-up), no dialog and no
notification toast may be on screen, and the file browser must list the notebooks.
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

PAGE_LOAD_TIMEOUT_S = 180  # JupyterLab's first load plus a kernel start, on 2 busy cores
SETTLE_S = 5               # how long after "idle" a late pop-up gets to appear
JS_ACTIVE_PATH = "() => { const w = jupyterapp.shell.currentWidget; return w && w.context ? w.context.path : null; }"


def wait_for(what: str, predicate, page, artifacts: Path, timeout_s: float = PAGE_LOAD_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if predicate():
                return
        except Exception:  # the page is still navigating: ask again
            pass
        if time.monotonic() > deadline:
            page.screenshot(path=str(artifacts / "first-start-failure.png"))
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}", pytrace=False)
        time.sleep(0.5)


@pytest.mark.slow
def test_first_start_opens_day1_with_no_popup(browser, course_lab, artifacts_dir):
    assert course_lab.open_url.endswith("/lab/tree/" + course_lab.first_notebook), course_lab.open_url
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(course_lab.open_url, wait_until="domcontentloaded")
        wait_for("day 1 to open", lambda: page.evaluate(JS_ACTIVE_PATH) == course_lab.first_notebook,
                 page, artifacts_dir)
        wait_for("the kernel to be idle (status bar '| Idle')",
                 lambda: page.locator(".jp-StatusBar-Widget", has_text="| Idle").count() > 0, page, artifacts_dir)
        time.sleep(SETTLE_S)
        page.screenshot(path=str(artifacts_dir / "first-start.png"))

        dialogs = page.locator(".jp-Dialog").all_inner_texts()
        toasts = page.locator(".jp-toastContainer .Toastify__toast").all_inner_texts()
        assert not dialogs, f"a dialog is on screen at first start: {dialogs}"
        assert not toasts, f"a notification is on screen at first start: {toasts}"
        listing = page.locator(".jp-FileBrowser .jp-DirListing-itemText").all_inner_texts()
        assert course_lab.first_notebook in listing and "day7_finetune.ipynb" in listing, listing
    finally:
        context.close()
