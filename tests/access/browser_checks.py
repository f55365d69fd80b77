"""What the browser tests check on every page they visit (issue 21): a screenshot kept as a test artefact, no
English label left untranslated on a Chinese page (checked against the catalog), and axe-core's accessibility
rules with no serious or critical violation.

Screenshots go to ``$PRESERVE_TEST_ARTEFACTS`` when set (CI keeps that folder), else to the test's temporary
directory, under ``<test>/<nn>-<page>.png``.
"""

from __future__ import annotations

import json
import os
import re
from functools import lru_cache
from pathlib import Path

from devtools import translations
from preservation.access.web import i18n

from ..services import service_missing

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # reported by the tests that need it: skipped locally, a failure on CI
    Axe = None
try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # reported by the tests that need it: skipped locally, a failure on CI
    sync_playwright = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

PLACEHOLDER = re.compile(r"%\(\w+\)s")
BLOCKING = ("serious", "critical")

# the visible text of the page and the words a reader meets in attributes: placeholders, labels, tooltips
VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    if (!element || element.closest('[lang="en"]') || element.closest('script, style')) continue;
    const text = node.textContent.trim();
    if (text) out.push(text);
  }
  for (const element of document.querySelectorAll('[placeholder], [aria-label], [title]')) {
    if (element.closest('[lang="en"]')) continue;
    for (const name of ['placeholder', 'aria-label', 'title']) {
      const value = (element.getAttribute(name) || '').trim();
      if (value) out.push(value);
    }
  }
  out.push(document.title);
  return out;
}"""


def need_browser() -> None:
    """Skip (locally) or fail (CI=true) unless Playwright, Debian's chromium and axe-core are here."""
    if sync_playwright is None:
        service_missing("playwright (pip install playwright)")
    if not os.path.exists(CHROMIUM):
        service_missing(f"Debian chromium at {CHROMIUM} (apt-get install chromium)")
    if Axe is None:
        service_missing("axe-playwright-python (pip install -e .[test])")


def launch(pw):
    """Debian's chromium, headless, driven by Playwright (never `playwright install`)."""
    try:
        return pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except PlaywrightError as e:
        service_missing(f"a working headless chromium ({e})")


MARK_CONTROLS = """() => {
  const controls = [...document.querySelectorAll('input:not([type=hidden]), textarea, select, button')]
    .filter(e => !e.disabled && (e.checkVisibility ? e.checkVisibility() : e.getClientRects().length > 0));
  controls.forEach((e, i) => e.setAttribute('data-keyboard-check', String(i)));
  return controls.map(e => e.outerHTML.slice(0, 120));
}"""
FOCUSED_CONTROL = "() => document.activeElement ? document.activeElement.getAttribute('data-keyboard-check') : null"


def unreachable_controls(page, limit: int = 400) -> list[str]:
    """The page's visible form controls that pressing Tab, from the top, never focuses (empty: all reachable)."""
    controls = page.evaluate(MARK_CONTROLS)
    reached: set[str] = set()
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(limit):
        page.keyboard.press("Tab")
        index = page.evaluate(FOCUSED_CONTROL)
        if index is not None:
            reached.add(index)
            if len(reached) == len(controls):
                break
    return [html for i, html in enumerate(controls) if str(i) not in reached]


def artefacts_dir(tmp_path: Path, test_name: str) -> Path:
    folder = Path(os.environ.get("PRESERVE_TEST_ARTEFACTS") or tmp_path) / re.sub(r"[^\w.-]+", "-", test_name)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@lru_cache(maxsize=1)
def english_messages() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """Every portal message whose Chinese differs from its English, with a pattern its English text matches."""
    chinese = translations.load(i18n.CHINESE)
    found = []
    for message in translations.extracted():
        if not message.id or not isinstance(message.id, str):
            continue
        translated = chinese.get(message.id)
        if translated is None or translated.string == message.id:
            continue  # the same in both languages (a name, a code): nothing to catch
        parts = PLACEHOLDER.split(message.id)
        if sum(len(p.strip()) for p in parts) < 3:
            continue  # "%(count)s, latest %(number)s"-like shells: too little English to recognise
        found.append((message.id, re.compile(".+?".join(re.escape(p) for p in parts), re.S)))
    return tuple(found)


def untranslated_labels(texts: list[str]) -> list[tuple[str, str]]:
    """(msgid, text) for each text that is a catalog message still in English: the whole text for short
    messages (a word such as "Open" may be part of a name), anywhere in the text for messages of 4+ words."""
    hits = []
    for msgid, pattern in english_messages():
        long_enough = len(msgid.split()) >= 4
        for text in texts:
            if pattern.fullmatch(text) or (long_enough and pattern.search(text)):
                hits.append((msgid, text))
    return hits


class PageChecks:
    """Call ``seen(page, name)`` after each page a flow reaches: screenshot, language check, axe."""

    def __init__(self, folder: Path, language: str, *, axe: bool = True) -> None:
        self.folder = folder
        self.language = language
        self.axe = Axe() if axe and Axe is not None else None
        self.visited: list[str] = []
        self.untranslated: list[tuple[str, str, str]] = []
        self.violations: list[tuple[str, str, str, int]] = []

    def seen(self, page, name: str) -> None:
        page.wait_for_load_state("load")
        shot = self.folder / f"{len(self.visited):02d}-{name}.png"
        page.screenshot(path=str(shot), full_page=True)
        self.visited.append(name)
        if self.language == i18n.CHINESE:
            assert page.locator("html").get_attribute("lang") == "zh-CN", name
            self.untranslated += [(name, msgid, text) for msgid, text in untranslated_labels(
                page.evaluate(VISIBLE_TEXT))]
        if self.axe is not None:
            results = self.axe.run(page)
            assert results.response["passes"] or results.response["violations"] or results.response["incomplete"]
            (self.folder / f"{len(self.visited) - 1:02d}-{name}.axe.json").write_text(
                json.dumps(results.response["violations"], indent=1), encoding="utf-8")
            self.violations += [(name, v["id"], v["impact"], len(v["nodes"])) for v in results.response["violations"]
                                if v["impact"] in BLOCKING]

    def assert_clean(self) -> None:
        assert self.untranslated == [], self.untranslated
        assert self.violations == [], self.violations
        for name in self.visited:
            assert any(p.name.endswith(f"-{name}.png") and p.stat().st_size > 5_000 for p in self.folder.iterdir())
