"""Build step of the wheel: compile the portal's message catalogs (``portal.po`` → ``portal.mo``).

Named in pyproject.toml (``[tool.setuptools.cmdclass]``). The ``.po`` files are the sources kept in the
repository; the ``.mo`` files are built, never committed. A checkout used in place (``pip install -e``)
reads the ``.po`` directly (preservation/access/web/i18n.py).
"""

from __future__ import annotations

from pathlib import Path

from setuptools.command.build_py import build_py


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in Path(self.build_lib).glob("preservation/access/locale/*/LC_MESSAGES/*.po"):
            with po.open("rb") as f:
                catalog = read_po(f, locale=po.parents[1].name)
            with po.with_suffix(".mo").open("wb") as f:
                write_mo(f, catalog)
