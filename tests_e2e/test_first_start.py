"""End-to-end: a learner's first start, exactly as ``python3 course.py lab [--zh]`` makes it, as root and as a user.

``course.py``'s own functions build everything: the learner's copy (``sync_my_course``: notebooks and
figures in ``my-course/``), JupyterLab's arguments (``lab_arguments``: the copy as root folder, day 1 in a
workspace of its edition, ``--allow-root`` only for root) and the direct link it prints (``day1_link``, token
included). The server runs as root, or as user 65534 (``setpriv``; it keeps only the right to read files, so
a venv under /root still works), in fresh settings folders. The test opens the printed link and requires:

- day 1 of the edition open, alone (``--zh`` never restores English tabs), its kernel idle, and 5 s later
  no dialog and no notification toast;
- every picture of day 1 rendered (each ``<img>`` of its markdown has ``naturalWidth > 0``), and every
  picture that any notebook of the copy links (both editions, solutions) loadable from the browser at
  the address JupyterLab resolves it to (again ``naturalWidth > 0``);
- nothing in the server's log about paths "outside root contents directory".
Screenshots: ``first-start-<user>-<edition>.png``.
"""
from __future__ import annotations

import json
import os
import posixpath
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import pytest


PAGE_LOAD_TIMEOUT_S = 180  # JupyterLab's first load plus a kernel start, on 2 busy cores
SETTLE_S = 5               # how long after "idle" a late pop-up gets to appear
JS_ACTIVE_PATH = "() => { const w = jupyterapp.shell.currentWidget; return w && w.context ? w.context.path : null; }"
JS_OPEN_DOCUMENTS = "() => [...jupyterapp.shell.widgets('main')].filter(w => w.context).map(w => w.context.path)"
# The <img> of the rendered markdown of the notebook `path`, after scrolling each into view.
JS_RENDERED_IMAGES = """
async (path) => {
  let panel = null;
  for (const w of jupyterapp.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
  if (!panel) return null;
  const imgs = [...panel.node.querySelectorAll('.jp-MarkdownOutput img')];
  for (const img of imgs) img.scrollIntoView();
  return imgs.map(i => ({src: i.getAttribute('src'), width: i.complete ? i.naturalWidth : 0}));
}
"""
# Load each URL as an image in the page (its session: the token's cookie); naturalWidth of each, 0 if it failed.
JS_LOAD_IMAGES = """
async (urls) => Promise.all(urls.map(url => new Promise(done => {
  const img = new Image();
  img.onload = () => done(img.naturalWidth);
  img.onerror = () => done(0);
  img.src = url;
})))
"""
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)|<img[^>]*\ssrc=[\"']([^\"']+)[\"']")


def image_links(notebook: Path) -> list[str]:
    """The local image links of a notebook's markdown cells, as written (``../figures/x.png``)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    links = [a or b for cell in cells if cell["cell_type"] == "markdown"
             for a, b in IMAGE_LINK.findall("".join(cell["source"]))]
    return [link for link in links if "://" not in link and not link.startswith("data:")]


def resolved(root: Path, notebook: Path, link: str) -> str | None:
    """The path under the server's root that JupyterLab fetches for ``link`` in ``notebook``; None outside it."""
    path = posixpath.normpath(posixpath.join(notebook.parent.relative_to(root).as_posix(), link))
    return None if path.startswith("../") or path == ".." else path


def test_every_image_link_of_the_copy_resolves_inside_its_root(tmp_path, course_start):
    """Without a browser: the link forms the notebooks use (``../figures``, ``../../figures``) stay in ``my-course``."""
    root = course_start.make_learners_copy(tmp_path)
    notebooks = sorted((root / "notebooks").rglob("*.ipynb"))
    assert len(notebooks) >= 21  # 7 days, 2 editions, the solutions
    checked = 0
    for notebook in notebooks:
        for link in image_links(notebook):
            target = resolved(root, notebook, link)
            assert target is not None, f"{notebook.relative_to(root)}: {link} is outside JupyterLab's root"
            assert (root / target).is_file(), f"{notebook.relative_to(root)}: {link} -> {target} is missing"
            checked += 1
    assert checked >= 22  # a banner per day and the diagrams (11), in both editions


def test_the_check_sees_a_link_outside_the_root():
    root = Path("/r")
    assert resolved(root, root / "notebooks" / "day1.ipynb", "../figures/a.png") == "figures/a.png"
    assert resolved(root, root / "notebooks" / "zh" / "day1.ipynb", "../../figures/a.png") == "figures/a.png"
    assert resolved(root, root / "day1.ipynb", "../figures/a.png") is None  # the old root at notebooks/


def wait_for(what: str, predicate, page, shot: Path, timeout_s: float = PAGE_LOAD_TIMEOUT_S):
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception:  # the page is still navigating: ask again
            pass
        if time.monotonic() > deadline:
            page.screenshot(path=str(shot))
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}; screenshot {shot}", pytrace=False)
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.parametrize("user", ["root", "learner"])
@pytest.mark.parametrize("edition", ["en", "zh"])
def test_first_start_opens_day1_alone_with_its_pictures(browser, tmp_path, artifacts_dir, user, edition,
                                                         course_start, request):
    if user == "root" and os.geteuid() != 0:
        pytest.skip("this run is not root")
    COURSE, running_lab = course_start.course, course_start.running_lab
    prefix = course_start.as_learner_prefix() if user == "learner" else []
    euid = 65534 if user == "learner" else os.geteuid()
    zh = edition == "zh"
    if user == "learner":  # a folder of the learner's own, where every folder above it can be entered
        tmp_path = Path(tempfile.mkdtemp(prefix="e2e-learner-"))
        tmp_path.chmod(0o755)
        request.addfinalizer(lambda: shutil.rmtree(tmp_path, ignore_errors=True))
    root, home = course_start.make_learners_copy(tmp_path), tmp_path / "home"
    home.mkdir()
    if user == "learner":  # the learner owns their copy and their settings
        for path in [tmp_path, *tmp_path.rglob("*")]:
            os.chown(path, euid, euid, follow_symlinks=False)
    lab_args = COURSE.lab_arguments(root, zh=zh, euid=euid)
    assert ("--allow-root" in lab_args) == (euid == 0)
    token = secrets.token_hex(16)
    log_path = artifacts_dir / f"jupyter-server-first-start-{user}-{edition}.log"
    shot = artifacts_dir / f"first-start-{user}-{edition}.png"
    with running_lab(root, home, log_path, lab_args, prefix, token) as (pid, url):
        port = int(url.rsplit(":", 1)[1])
        link = COURSE.day1_link(COURSE.day1_url_path(root, zh), port, token, ip="127.0.0.1")
        day1 = COURSE.first_notebook(root / "notebooks", zh).relative_to(root).as_posix()
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            page.goto(link.replace("localhost", "127.0.0.1"), wait_until="domcontentloaded")
            wait_for(f"{day1} to open", lambda: page.evaluate(JS_ACTIVE_PATH) == day1, page, shot)
            wait_for("the kernel to be idle (status bar '| Idle')",
                     lambda: page.locator(".jp-StatusBar-Widget", has_text="| Idle").count() > 0, page, shot)
            time.sleep(SETTLE_S)
            page.screenshot(path=str(shot))

            assert page.evaluate(JS_OPEN_DOCUMENTS) == [day1], "day 1 is not the only open document"
            dialogs = page.locator(".jp-Dialog").all_inner_texts()
            toasts = page.locator(".jp-toastContainer .Toastify__toast").all_inner_texts()
            assert not dialogs, f"a dialog is on screen at first start: {dialogs}"
            assert not toasts, f"a notification is on screen at first start: {toasts}"

            expected = len(image_links(root / day1))
            rendered = wait_for(f"day 1's {expected} pictures to load", lambda: (
                imgs := page.evaluate(JS_RENDERED_IMAGES, day1)) and len(imgs) >= expected
                and all(i["width"] > 0 for i in imgs) and imgs, page, shot, timeout_s=60)
            assert expected >= 1 and len(rendered) >= expected, rendered

            links = {}
            for notebook in sorted((root / "notebooks").rglob("*.ipynb")):
                if ".ipynb_checkpoints" in notebook.parts:
                    continue
                for link_text in image_links(notebook):
                    target = resolved(root, notebook, link_text)
                    assert target, f"{notebook.relative_to(root)}: {link_text} is outside the root"
                    links[f"{url}/files/{target}"] = f"{notebook.relative_to(root)}: {link_text}"
            widths = page.evaluate(JS_LOAD_IMAGES, list(links))
            broken = [where for where, width in zip(links.values(), widths) if width <= 0]
            assert not broken, f"pictures that do not load: {broken}"
        finally:
            context.close()
    log = log_path.read_text(errors="replace")
    assert "outside root contents directory" not in log, log[-2000:]
    if user == "learner":
        assert "Running as root" not in log
