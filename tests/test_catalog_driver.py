"""A PostgreSQL catalog URL on a host without the driver: a coded error naming the extra, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from preservation.catalog.db import Catalog
from preservation.errors import CatalogDriverMissing

from .processes import REPO_ROOT

URL = "postgresql+psycopg://preserve:secret@127.0.0.1:5432/preserve"
# the driver made unimportable, as on a host where only `pip install preserve` ran
NO_DRIVER = "import sys; sys.modules['psycopg'] = None; from preservation.cli.main import main; main()"


def test_a_missing_driver_is_a_coded_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(CatalogDriverMissing) as e:
        Catalog(URL)
    assert e.value.code == "E204"
    assert "pip install 'preserve[postgres]'" in str(e.value)
    assert "secret" not in str(e.value)


def test_a_psycopg2_url_without_psycopg2_says_which_url_to_use(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(CatalogDriverMissing) as e:
        Catalog("postgresql+psycopg2://preserve@127.0.0.1/preserve")
    assert "postgresql+psycopg://" in str(e.value) and "preserve[postgres]" in str(e.value)


def test_the_cli_exits_with_the_message_and_no_traceback(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "preserve.yaml").write_text(f"catalog_url: {URL}\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PRESERVE_NO_PROGRESS": "1"}
    done = subprocess.run([sys.executable, "-c", NO_DRIVER, "--home", str(home), "status"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    output = done.stdout + done.stderr
    assert done.returncode == CatalogDriverMissing.exit_code, output
    assert "E204" in output and "pip install 'preserve[postgres]'" in output
    assert "Traceback" not in output
