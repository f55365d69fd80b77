"""Keep the portal's message catalogs in step with the templates (issue 21).

    python -m devtools.translations            # extract, then merge into every language's portal.po
    python -m devtools.translations --check    # exit 1 when a message has no translation (what the test checks)

Extraction is Babel's, configured by ``babel.cfg``; new messages arrive untranslated and the check
fails until a translator fills them in.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po, write_po

from preservation.access.web import i18n

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2)}


def extracted() -> Catalog:
    """Every message the portal's templates and web modules ask to translate."""
    method_map, options_map = parse_mapping_cfg(io.StringIO((ROOT / "babel.cfg").read_text(encoding="utf-8")))
    catalog = Catalog(project="preserve", domain=i18n.DOMAIN)
    for filename, lineno, message, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def load(language: str) -> Catalog:
    with i18n.catalog_path(language).open("rb") as f:
        return read_po(f, locale=language, domain=i18n.DOMAIN)


def untranslated(template: Catalog, catalog: Catalog) -> list[str]:
    """The template's messages that ``catalog`` leaves empty or fuzzy."""
    missing = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id, context=message.context)
        strings = found.string if found is not None else None
        if found is None or found.fuzzy or not strings or (isinstance(strings, tuple) and not all(strings)):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def update(language: str, template: Catalog) -> None:
    catalog = load(language)
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()
    buffer = io.BytesIO()
    write_po(buffer, catalog, omit_header=False, sort_output=True, no_location=True, width=120)
    i18n.catalog_path(language).write_bytes(buffer.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report untranslated messages")
    args = parser.parse_args(argv)
    template = extracted()
    status = 0
    for language in i18n.LANGUAGES:
        if language == i18n.ENGLISH:
            continue  # the messages are English
        if not args.check:
            update(language, template)
        missing = untranslated(template, load(language))
        for message in missing:
            print(f"{language}: untranslated: {message!r}", file=sys.stderr)
        status = status or (1 if missing else 0)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
