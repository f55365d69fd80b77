"""The fast reader of the migration chain (preservation.catalog.revisions) agrees with alembic, and refuses a
chain alembic would not run as one line."""

from __future__ import annotations

import pytest

from preservation.catalog import revisions
from preservation.catalog.db import _alembic_config, _head_revision
from preservation.errors import CatalogError


def test_the_head_and_the_revisions_are_alembics():
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config("sqlite://"))
    assert revisions.head() == _head_revision("sqlite://") == script.get_current_head()
    assert list(revisions.chain()) == [s.revision for s in reversed(list(script.walk_revisions()))]
    assert revisions.known() == {s.revision for s in script.walk_revisions()}


def _chain_of(tmp_path, monkeypatch, files: dict[str, str]) -> tuple[str, ...]:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(revisions, "VERSIONS", tmp_path)
    revisions.chain.cache_clear()
    try:
        return revisions.chain()
    finally:
        revisions.chain.cache_clear()


def test_a_linear_chain_is_read_in_order_whatever_the_file_names(tmp_path, monkeypatch):
    files = {"b.py": 'revision = "0002"\ndown_revision = "0001"\n',
             "a.py": "revision: str = '0001'\ndown_revision = None\n",
             "c.py": 'x = 1\nrevision = "0003"\ndown_revision = "0002"\n'}
    assert _chain_of(tmp_path, monkeypatch, files) == ("0001", "0002", "0003")


@pytest.mark.parametrize("files, message", [
    ({"a.py": 'revision = "1"\ndown_revision = None\n', "b.py": 'revision = "2"\ndown_revision = "1"\n',
      "c.py": 'revision = "3"\ndown_revision = "1"\n'}, "branch"),
    ({"a.py": 'revision = "1"\ndown_revision = None\n', "b.py": 'revision = "2"\ndown_revision = "9"\n'},
     "not on the line"),
    ({"a.py": 'revision = compute()\ndown_revision = None\n'}, "no revision"),
])
def test_a_chain_that_is_not_one_line_of_plain_strings_is_refused(tmp_path, monkeypatch, files, message):
    with pytest.raises(CatalogError, match=message):
        _chain_of(tmp_path, monkeypatch, files)
