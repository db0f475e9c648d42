"""End-to-end: the course's interactive explorers work in a real JupyterLab in a real browser.

For each notebook with an explorer (day 3: attention-mask explorer, day 6: temperature / top-k
sampler) the test opens a temporary copy in JupyterLab in headless Chromium, clears its outputs,
runs all cells, waits until every code cell has run without an error, then finds each rendered
ipywidgets UI that has controls and a plot (an <img> in an Output widget). It screenshots it,
moves its controls one at a time (drags a slider, clicks a checkbox, picks another option) and
checks that the plot is redrawn with different pixels (the image's data URI changes); each
redrawn state is screenshotted too. Screenshots go to $E2E_ARTIFACTS (default: a pytest
temporary folder, printed at the end of the run). Fixtures (server, browser, skips) are in
conftest.py.

Day 3 is also opened in the Chinese edition (notebooks/zh/, whose first code cell calls
set_language("zh")): its explorer's control labels must be the Chinese ones. For both editions of
day 3 the test asks the notebook's kernel which tick labels the plot on screen has: the running
example's 你 must be one of them (see `check_attention_explorer`).
"""
from __future__ import annotations

import ast
import base64
import hashlib
import json
import os
import re
import time
from pathlib import Path

import pytest

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the browser fixture skips the test; this module must still import
    PlaywrightError = Exception

# (notebook under notebooks/, seconds allowed for "run all" ($E2E_RUN_ALL_TIMEOUT_S overrides),
# what else to check): day 6 retrains the day 5 checkpoint when it is missing (about 3 minutes on
# an idle 2-core CPU, far more on a busy one). "attention": the day 3 explorer's checks below;
# "labels" / "options": texts its controls must show (the Chinese edition's); "chinese_titles":
# every plot title must contain Chinese.
DAY3_ZH = {"attention": True, "labels": ["句子", "因果掩码", "除以 √d_k", "填充", "填充掩码"],
           "options": ["无", "右侧", "左侧"], "chinese_titles": True}
NOTEBOOKS = [
    pytest.param("day3_attention.ipynb", 300, {"attention": True}, id="day3-attention-explorer"),
    pytest.param("zh/day3_attention.ipynb", 300, DAY3_ZH, id="zh-day3-attention-explorer"),
    pytest.param("day6_generate.ipynb", 900, {}, id="day6-temperature-explorer"),
    # the same Chinese day 3 where the system has no CJK font: the course's packaged font alone draws it
    pytest.param("zh/day3_attention.ipynb", 300, {**DAY3_ZH, "fonts": "hidden"}, id="zh-day3-no-system-fonts"),
]
PAGE_LOAD_TIMEOUT_S = 180      # JupyterLab's first load plus a kernel start, on 2 busy cores
RENDER_TIMEOUT_S = 60          # from "all cells ran" to the widget's plot on screen
REDRAW_TIMEOUT_S = 30          # from moving a control to a different plot
MAX_CONTROLS = 8               # controls tried per explorer
WIDGETS_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"

# The notebook panel whose document is `path`, found among the main-area widgets.
JS_FIND_PANEL = """
(path) => {
  for (const w of jupyterapp.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) return true;
  }
  return false;
}
"""
# Progress of "run all": code cells with source, those with an execution count, those queued or
# running ("[*]"), error outputs, and the kernel's status.
JS_RUN_STATE = """
(path) => {
  let panel = null;
  for (const w of jupyterapp.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
  if (!panel || !panel.content.model) return null;
  const cells = panel.content.model.cells;
  let total = 0, done = 0, running = 0;
  const errors = [], stderr = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code' || cell.sharedModel.getSource().trim() === '') continue;
    total++;
    if (cell.executionCount !== null && cell.executionCount !== undefined) done++;
    if (cell.executionState === 'running') running++;
    for (let j = 0; j < cell.outputs.length; j++) {
      const out = cell.outputs.get(j).toJSON();
      if (out.output_type === 'error') errors.push(`cell ${i + 1}: ${out.ename}: ${out.evalue}`);
      if (out.output_type === 'stream' && out.name === 'stderr') stderr.push(`cell ${i + 1}: ${[].concat(out.text).join('').slice(0, 300)}`);
    }
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {total, done, running, errors, stderr, status: kernel ? kernel.status : 'no kernel'};
}
"""
# Top-level widget views in the notebook's outputs that have a control and an image; each is
# tagged with data-e2e-explorer=<n> so that locators can find it again.
JS_TAG_EXPLORERS = """
() => {
  const controls = '.widget-slider .noUi-handle, .widget-checkbox input, .widget-dropdown select, '
                 + '.widget-radio-box input, .widget-toggle-buttons button';
  const found = [];
  const roots = [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output > .jupyter-widgets')]
      .filter(el => el.parentElement.closest('.jupyter-widgets') === null);
  for (const root of roots) {
    const imgs = [...root.querySelectorAll('.widget-output img')];
    if (root.querySelector(controls) && imgs.length && imgs.every(i => i.complete && i.naturalWidth > 0)) {
      root.setAttribute('data-e2e-explorer', String(found.length));
      found.push(found.length);
    }
  }
  return found.length;
}
"""
# Evaluate one Python expression in the notebook's kernel: a silent execute request's user
# expression (no cell, no output, no history, execution count unchanged). Resolves to the
# expression's {status, data: {'text/plain': repr}} or {status: 'error', ename, evalue}.
JS_KERNEL_EXPRESSION = """
async ([path, expression, timeoutMs]) => {
  let panel = null;
  for (const w of jupyterapp.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return {status: 'error', ename: 'NoKernel', evalue: 'the notebook has no kernel'};
  const future = kernel.requestExecute({code: '', silent: true, store_history: false,
                                        user_expressions: {value: expression}});
  const reply = await Promise.race([future.done, new Promise(r => setTimeout(() => r(null), timeoutMs))]);
  if (!reply) return {status: 'error', ename: 'Timeout', evalue: `no reply in ${timeoutMs} ms`};
  return reply.content.user_expressions.value;
}
"""
# Run in the kernel (by KERNEL_PROBE) after "run all", before any control moves. For each attention
# explorer the notebook showed as a cell's value (IPython's Out) or holds in a variable: its
# sentence, and the texts of the figure plot_attention_maps draws for its current maps, drawn and
# saved as AttentionExplorer.update does (dpi=80), with the sha256 of that PNG and of the PNG the
# explorer's Output widget holds. When the redrawn PNG equals the one in the browser's <img>, the
# tick labels read here are those of the picture on screen.
PY_ATTENTION_PROBE = '''
import base64, hashlib, io
import matplotlib.pyplot as plt
from gptlib.course.attention_explorer import AttentionExplorer, plot_attention_maps

result = []
found = {id(v): v for v in [*user_ns.get("Out", {}).values(), *user_ns.values()] if isinstance(v, AttentionExplorer)}
for explorer in found.values():
    figure = plot_attention_maps(explorer.maps, title=explorer.title())
    png = io.BytesIO()
    figure.savefig(png, format="png", dpi=80)
    plt.close(figure)
    shown = [o["data"]["image/png"] for o in explorer.output.outputs if "image/png" in o.get("data", {})]
    result.append({
        "sentence": explorer.sentence.value,
        "tick_labels": [t.get_text() for t in figure.axes[0].get_xticklabels()],
        "titles": [ax.get_title() for ax in figure.axes[:3]] + [figure.get_suptitle()],
        "redrawn_sha256": hashlib.sha256(png.getvalue()).hexdigest(),
        "shown_sha256": [hashlib.sha256(base64.b64decode(s)).hexdigest() for s in shown],
    })
'''
# One expression that runs a probe's statements in a private namespace and returns its `result`:
# nothing is added to the learner's namespace.
KERNEL_PROBE = "(lambda ns: (exec({source!r}, ns), ns['result'])[1])({{'user_ns': globals()}})"
JS_IMAGES = """
(root) => {
  const imgs = [...root.querySelectorAll('.widget-output img')];
  return {srcs: imgs.map(i => i.src), loaded: imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0),
          sizes: imgs.map(i => [i.naturalWidth, i.naturalHeight]), shown: imgs.map(i => i.clientWidth)};
}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "control"


class NotebookRun:
    """One notebook opened in one browser page; helpers that fail with what the page showed."""

    def __init__(self, page, path: str, artifacts: Path, stem: str, report: dict):
        self.page, self.path, self.artifacts, self.stem, self.report = page, path, artifacts, stem, report

    def fail(self, message: str):
        shot = self.artifacts / f"{self.stem}-failure.png"
        try:
            self.page.screenshot(path=str(shot), full_page=True)
            status = self.page.locator(".jp-StatusBar-Widget").first.inner_text(timeout=2000)
            status = " · ".join(line.strip() for line in status.splitlines() if line.strip())
            dialogs = self.page.locator(".jp-Dialog").all_inner_texts()
        except Exception:  # the page itself is gone: report the message alone
            status, dialogs = "?", []
        extra = f"\nstatus bar: {status!r}" + (f"\nopen dialog: {dialogs}" if dialogs else "")
        self.report["failure"] = message + extra
        pytest.fail(f"{self.path}: {message}{extra}\nscreenshot: {shot}", pytrace=False)

    def wait_until(self, what: str, predicate, timeout_s: float, interval_s: float = 0.5):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = predicate()
            except PlaywrightError:  # e.g. the page is still navigating: ask again
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                self.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
            time.sleep(interval_s)

    def run_state(self) -> dict:
        return self.page.evaluate(JS_RUN_STATE, self.path) or {}

    def open_and_run_all(self, server_url: str, timeout_s: float, report: dict) -> dict:
        page = self.page
        opened = time.monotonic()
        page.goto(f"{server_url}/lab/tree/{self.path}?reset", wait_until="domcontentloaded")
        self.wait_until("JupyterLab to load the notebook",
                        lambda: page.evaluate("() => typeof jupyterapp !== 'undefined'")
                        and page.evaluate(JS_FIND_PANEL, self.path), PAGE_LOAD_TIMEOUT_S)
        # The toolbar says idle too early and Run All is then silently dropped: wait for the status bar.
        self.wait_until("the kernel to be idle (status bar '| Idle')",
                        lambda: page.locator(".jp-StatusBar-Widget", has_text="| Idle").count() > 0,
                        PAGE_LOAD_TIMEOUT_S)
        if not page.evaluate(f"() => jupyterapp.isPluginActivated('{WIDGETS_PLUGIN}')"):
            self.fail("the ipywidgets JupyterLab extension is not active: widgets cannot render")

        report["seconds_to_open"] = round(time.monotonic() - opened, 1)
        # Commands are fired, not awaited: a command's promise settles only when it is done
        # (for Run All: when the last cell finished), and page.evaluate has no timeout.
        page.evaluate("() => { jupyterapp.commands.execute('notebook:clear-all-cell-outputs'); }")
        self.wait_until("outputs to clear", lambda: self.run_state().get("done") == 0, 30)
        started = time.monotonic()
        for _attempt in range(3):
            page.evaluate("() => { jupyterapp.commands.execute('notebook:run-all-cells'); }")
            try:
                self.wait_until_quiet(
                    lambda: (s := self.run_state()).get("done", 0) > 0 or s.get("running", 0) > 0, 20)
                break
            except TimeoutError:
                continue
        else:
            self.fail("'Run All Cells' did not start the kernel")

        deadline = started + timeout_s
        idle_with_errors = 0
        while True:
            state = self.run_state()
            if state.get("errors"):
                idle_with_errors = idle_with_errors + 1 if state.get("running") == 0 else 0
                if idle_with_errors >= 3:
                    self.fail("a cell raised an error:\n  " + "\n  ".join(state["errors"]))
            elif state.get("total") and state.get("done") == state.get("total") and state.get("running") == 0:
                state["seconds"] = round(time.monotonic() - started, 1)
                return state
            if time.monotonic() > deadline:
                self.fail(f"'Run All' did not finish in {timeout_s} s: {state}")
            time.sleep(1)

    def wait_until_quiet(self, predicate, timeout_s: float):
        """Like wait_until, but raises TimeoutError (for retries) instead of failing the test."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError
            time.sleep(0.5)

    def kernel_value(self, python_expression: str, timeout_s: float = 120):
        """The value of a Python expression evaluated in the notebook's kernel (a silent request:
        no cell, no output); it must return literals (str, numbers, lists, dicts)."""
        reply = self.page.evaluate(JS_KERNEL_EXPRESSION, [self.path, python_expression, int(timeout_s * 1000)])
        if not reply or reply.get("status") != "ok":
            reply = reply or {}
            self.fail(f"the kernel could not evaluate the test's probe: {reply.get('ename')}: {reply.get('evalue')}")
        return ast.literal_eval(reply["data"]["text/plain"])

    def shutdown_kernel(self):
        try:
            self.page.evaluate("""(path) => {
              for (const w of jupyterapp.shell.widgets('main'))
                if (w.context && w.context.path === path)  // wait for it, but 15 s at most
                  return Promise.race([w.sessionContext.shutdown(), new Promise(r => setTimeout(r, 15000))]);
            }""", self.path)
        except Exception:
            pass


CJK = re.compile(r"[\u3400-\u9fff]")


def check_attention_explorer(run: NotebookRun, explorer, expect: dict, report: dict) -> None:
    """Day 3's explorer, before any control moves: what its controls say, and its plot's tick labels.

    The plot is a PNG, so its tick labels are not text in the page, and the test reads them in the
    kernel instead (PY_ATTENTION_PROBE): the kernel redraws the explorer's current maps as the explorer
    draws them and reads the figure's tick labels and titles. The check proves what it can: the
    redrawn PNG is byte for byte the <img> in the browser, so these are the labels matplotlib was given
    for the picture on screen, and the running example's 你 is one of them (not written as U+4F60, which
    displayable_label does when no font can draw it). Whether the glyph's pixels look right is
    tests/test_attention_explorer.py's check (no missing-glyph warnings with the packaged CJK font) and
    the screenshots'. The sentence box in the page must show the same sentence.
    """
    sentence_box = explorer.locator("input[list]")  # the sentence Combobox: a text input with a datalist
    assert sentence_box.count() == 1, f"the attention explorer has {sentence_box.count()} sentence boxes, not 1"
    sentence = sentence_box.input_value()
    labels = [t.strip() for t in explorer.locator(".widget-label, .widget-label-basic").all_inner_texts()]
    labels = [t for t in labels if t and t != "\u200b"]
    options = explorer.locator(".widget-dropdown select option").all_inner_texts()
    src = explorer.evaluate(JS_IMAGES)["srcs"][0]
    on_screen = hashlib.sha256(base64.b64decode(src.split(",", 1)[1])).hexdigest()
    probed = run.kernel_value(KERNEL_PROBE.format(source=PY_ATTENTION_PROBE))
    report["attention"] = {"sentence_box": sentence, "control_labels": labels, "dropdown_options": options,
                           "plot_sha256": on_screen, "kernel": probed}

    if not probed:
        run.fail("the kernel holds no AttentionExplorer (the notebook must show it as a cell's value)")
    drawn = [p for p in probed if p["redrawn_sha256"] == on_screen]
    if not drawn:
        why = ("the explorer's Output holds that picture, but redrawing its maps gives other bytes: "
               "does AttentionExplorer.update still save the PNG as PY_ATTENTION_PROBE does (dpi=80)?"
               if any(on_screen in p["shown_sha256"] for p in probed) else
               "no explorer in the kernel holds the picture the browser shows")
        run.fail(f"the explorer's plot is not the one the kernel redraws: {why}\nkernel: {probed}")
    drawn = drawn[0]
    assert "你" in sentence, f"the sentence box shows {sentence!r}, not the running example (你好世界啊)"
    assert drawn["sentence"] == sentence, f"the kernel's sentence {drawn['sentence']!r} is not the box's {sentence!r}"
    assert "你" in drawn["tick_labels"], (
        f"the plot's tick labels lack 你 (U+4F60 means no font could draw it): {drawn['tick_labels']}")
    missing = [label for label in expect.get("labels", []) if label not in labels]
    assert not missing, f"the explorer's controls lack the labels {missing}; they show {labels}"
    missing = [option for option in expect.get("options", []) if option not in options]
    assert not missing, f"the padding dropdown lacks the options {missing}; it offers {options}"
    if expect.get("chinese_titles"):
        english = [title for title in drawn["titles"] if not CJK.search(title)]
        assert not english, f"plot titles without Chinese: {english} (all: {drawn['titles']})"


def _controls(explorer):
    """(kind, label, locator) for each enabled control of one explorer, in page order."""
    found = []
    for kind, selector in [("slider", ".widget-slider"), ("checkbox", ".widget-checkbox"),
                           ("dropdown", ".widget-dropdown"), ("radio", ".widget-radio"),
                           ("toggle-buttons", ".widget-toggle-buttons")]:
        for box in explorer.locator(selector).all():
            label = box.locator(".widget-label, .widget-label-basic").all_inner_texts()
            label = " ".join(t.strip() for t in label if t.strip() and t.strip() != "\u200b") or kind
            found.append((kind, label, box))
    return found


def _move(page, kind: str, box) -> str | None:
    """Move one control the way a learner would; returns a description, or None if it could not move."""
    if kind == "slider":
        handle, track = box.locator(".noUi-handle").first, box.locator(".noUi-base").first
        if handle.get_attribute("aria-disabled") == "true" or box.locator("[disabled]").count():
            return None
        readout = box.locator(".widget-readout")

        def value():  # the number the learner sees; the handle's aria value when there is no readout
            return readout.first.inner_text().strip() if readout.count() else handle.get_attribute("aria-valuenow")

        before = value()
        handle.scroll_into_view_if_needed()
        hb, tb = handle.bounding_box(), track.bounding_box()
        x, y = hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2
        # Drag a third of the track, away from whichever end the handle is nearer to.
        dx = tb["width"] / 3 if x < tb["x"] + tb["width"] / 2 else -tb["width"] / 3
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + dx / 2, y, steps=5)
        page.mouse.move(x + dx, y, steps=5)
        page.mouse.up()
        after = value()
        if after == before:  # a drag the slider ignored: use the keyboard instead
            handle.focus()
            page.keyboard.press("ArrowRight" if dx > 0 else "ArrowLeft")
            after = value()
        return f"dragged slider {before} -> {after}" if after != before else None
    if kind == "checkbox":
        box_input = box.locator("input[type=checkbox]").first
        if box_input.is_disabled():
            return None
        was = box_input.is_checked()
        box_input.click()
        return f"clicked checkbox {was} -> {not was}"
    if kind == "dropdown":
        select = box.locator("select").first
        options = select.locator("option").all_inner_texts()
        current = select.evaluate("s => s.selectedIndex")
        if select.is_disabled() or len(options) < 2:
            return None
        target = (current + 1) % len(options)
        select.select_option(index=target)
        return f"selected {options[current]!r} -> {options[target]!r}"
    if kind == "radio":
        radios = box.locator("input[type=radio]:not(:checked):not([disabled])")
        if not radios.count():
            return None
        radios.first.click()
        return "picked another radio option"
    if kind == "toggle-buttons":
        buttons = box.locator("button:not(.mod-active):not([disabled])")
        if not buttons.count():
            return None
        text = buttons.first.inner_text()
        buttons.first.click()
        return f"pressed toggle button {text!r}"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("notebook, run_timeout_s, expect", NOTEBOOKS)
def test_explorer_renders_and_reacts(notebook, run_timeout_s, expect, browser, artifacts_dir, request):
    hidden_fonts = expect.get("fonts") == "hidden"
    lab_server = request.getfixturevalue("lab_server_without_system_fonts" if hidden_fonts else "lab_server")
    source = lab_server.root / "notebooks" / notebook
    if not source.exists():
        pytest.fail(f"notebooks/{notebook} is missing: the browser test drives its explorer", pytrace=False)
    stem = notebook.removesuffix(".ipynb").replace("/", "-") + ("-no-system-fonts" if hidden_fonts else "")
    run_timeout_s = float(os.environ.get("E2E_RUN_ALL_TIMEOUT_S") or run_timeout_s)
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, device_scale_factor=1)
    context.set_default_timeout(60_000)  # element actions, on 2 busy cores
    page = context.new_page()
    report: dict = {"notebook": notebook}
    run = NotebookRun(page, f"notebooks/{notebook}", artifacts_dir, stem, report)
    try:
        report["run_all"] = run.open_and_run_all(lab_server.url, run_timeout_s, report)
        # which system CJK fonts the kernel's matplotlib sees (fonts-wqy-zenhei's made day 3 print a findfont warning)
        report["system_cjk_fonts"] = run.kernel_value(
            "sorted({f.name for f in __import__('matplotlib.font_manager').font_manager.fontManager.ttflist "
            "if f.name.startswith(('WenQuanYi Zen', 'Noto Sans CJK', 'Noto Serif CJK', 'Droid Sans Fallback'))})")
        if hidden_fonts and report["system_cjk_fonts"]:
            run.fail(f"the system's fonts were not hidden from the kernel: {report['system_cjk_fonts']}")
        if report["run_all"].get("stderr"):  # a red box on a learner's screen (e.g. a findfont warning)
            run.fail("a cell wrote to stderr on a fresh run:\n  " + "\n  ".join(report["run_all"]["stderr"]))
        interacting = time.monotonic()

        count = run.wait_until("an explorer (a widget with a control and a plot) to render",
                               lambda: page.evaluate(JS_TAG_EXPLORERS), RENDER_TIMEOUT_S)
        time.sleep(1.0)  # a second explorer may render a moment after the first: count again
        count = page.evaluate(JS_TAG_EXPLORERS) or count
        broken = page.locator(".jp-Notebook .jupyter-widgets", has_text="Error displaying widget")
        if broken.count():
            run.fail(f"a widget failed to render: {broken.first.inner_text()[:300]!r}")
        report["explorers"] = []
        for index in range(count):
            explorer = page.locator(f'[data-e2e-explorer="{index}"]')
            explorer.scroll_into_view_if_needed()
            box = explorer.bounding_box()
            assert box and box["width"] > 50 and box["height"] > 50, f"explorer {index} is not visible: {box}"
            images = explorer.evaluate(JS_IMAGES)
            assert images["loaded"], f"explorer {index}: its plot did not load: {images['sizes']}"
            if expect.get("attention"):  # legible at 1400 px: the PNG (11 px tick labels) is shown unscaled
                scale = min(shown / natural for shown, (natural, _) in zip(images["shown"], images["sizes"]))
                report["plot_scale"] = round(scale, 3)
                assert scale >= 0.95, f"explorer {index}: its plot is shown at {scale:.0%} of its size"
            explorer.screenshot(path=str(artifacts_dir / f"{stem}-explorer{index}-0-initial.png"))
            if expect.get("attention") and explorer.locator("input[list]").count():  # its sentence box
                check_attention_explorer(run, explorer, expect, report)

            tried = []
            for step, (kind, label, control) in enumerate(_controls(explorer)[:MAX_CONTROLS], start=1):
                before = explorer.evaluate(JS_IMAGES)["srcs"]
                action = _move(page, kind, control)
                entry = {"control": f"{kind} {label!r}", "action": action, "plot_changed": False}
                tried.append(entry)
                if action is None:
                    continue
                deadline = time.monotonic() + REDRAW_TIMEOUT_S
                while time.monotonic() < deadline:
                    now = explorer.evaluate(JS_IMAGES)
                    if now["loaded"] and now["srcs"] != before:
                        entry["plot_changed"] = True
                        break
                    time.sleep(0.25)
                if entry["plot_changed"]:
                    # Let redraws triggered during a drag finish, then keep the settled picture.
                    last, stable_since = None, time.monotonic()
                    while time.monotonic() - stable_since < 1.0 and time.monotonic() < deadline + 10:
                        now = explorer.evaluate(JS_IMAGES)
                        if now["srcs"] != last:
                            last, stable_since = now["srcs"], time.monotonic()
                        time.sleep(0.2)
                    shot = artifacts_dir / f"{stem}-explorer{index}-{step}-{_slug(kind + '-' + label)}.png"
                    explorer.screenshot(path=str(shot))
                    entry["screenshot"] = shot.name
            report["explorers"].append({"index": index, "controls": tried})

            text = explorer.inner_text()
            if "Traceback" in text:
                run.fail(f"explorer {index} shows an error after its controls moved:\n{text[:1500]}")
            if not any(entry["plot_changed"] for entry in tried):
                run.fail(f"explorer {index}: no control changed its plot; tried: {tried}")
        if expect.get("attention") and "attention" not in report:
            run.fail("no attention explorer (a widget with a sentence box and a plot) rendered")
        report["seconds_rendering_and_interacting"] = round(time.monotonic() - interacting, 1)
        page.screenshot(path=str(artifacts_dir / f"{stem}-page.png"))
    finally:
        (artifacts_dir / f"{stem}-report.json").write_text(json.dumps(report, indent=2))
        run.shutdown_kernel()
        context.close()
