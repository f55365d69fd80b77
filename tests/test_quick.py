"""The quick commands' settings (preservation.quick): a digest of the validated values, never stale, never looser.

The digest spares `preserve status` and `preserve node list` the pydantic models (issue 22 point 3); what they
read through it must always be what validating the settings and the policy in full gives, and a file that does
not validate must be refused as before.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from preservation.catalog import reads
from preservation.errors import CatalogNotInitialised, ConfigError, PolicyError
from preservation.nodes import list_nodes
from preservation.quick import DIGEST_NAME, quick_settings, read_catalog
from preservation.settings import DEFAULT_POLICY

from .fixtures import make_repo


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    make_repo(home).close()
    return home


def _config(home, text: str) -> None:
    (home / "preserve.yaml").write_text(text, encoding="utf-8")


def test_the_digest_is_written_private_and_read_without_the_models(home):
    first = quick_settings(home)
    digest = home / DIGEST_NAME
    assert stat.S_IMODE(digest.stat().st_mode) == 0o600
    assert first.catalog_url == f"sqlite:///{home / 'catalog.sqlite'}" and first.policy_label == "default@1"
    probe = (f"import sys\nfrom preservation.quick import quick_settings\nq = quick_settings({str(home)!r})\n"
             "print(q.policy_label, q.audit_interval_days, q.monitoring.silent_after_seconds)\n"
             "print(sorted({m.split('.')[0] for m in sys.modules} & {'pydantic', 'sqlalchemy', 'yaml'}))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["default@1 90.0 120.0", "[]"]


def test_a_changed_config_is_validated_again(home):
    assert quick_settings(home).monitoring.silent_after_seconds == 120
    _config(home, (home / "preserve.yaml").read_text(encoding="utf-8") + "monitoring:\n  silent_after_seconds: 300\n")
    assert quick_settings(home).monitoring.silent_after_seconds == 300
    _config(home, "monitoring:\n  silent_after_seconds: 1\n")  # below its minimum: refused though a digest exists
    with pytest.raises(ConfigError):
        quick_settings(home)
    _config(home, "no_such_setting: 1\n")
    with pytest.raises(ConfigError):
        quick_settings(home)


def test_a_changed_policy_file_is_validated_again(home, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("name: default", "name: strict"),
                      encoding="utf-8")
    _config(home, f"policy: '{policy}'\n")
    assert quick_settings(home).policy_label == "strict@1"
    policy.write_text(policy.read_text(encoding="utf-8").replace("interval_days: 90", "interval_days: 30"),
                      encoding="utf-8")
    assert quick_settings(home).audit_interval_days == 30
    policy.write_text(policy.read_text(encoding="utf-8").replace("interval_days: 30", "interval_days: -1"),
                      encoding="utf-8")
    with pytest.raises(PolicyError):
        quick_settings(home)


def test_the_environment_that_overrides_the_config_is_part_of_the_key(home, tmp_path, monkeypatch):
    assert quick_settings(home).catalog_url.endswith("/home/catalog.sqlite")
    monkeypatch.setenv("PRESERVE_CATALOG", f"sqlite:///{tmp_path / 'other.sqlite'}")
    assert quick_settings(home).catalog_url == f"sqlite:///{tmp_path / 'other.sqlite'}"


def test_a_digest_edited_by_hand_is_not_believed(home):
    quick_settings(home)
    digest = home / DIGEST_NAME
    found = json.loads(digest.read_text(encoding="utf-8"))
    digest.write_text(json.dumps({**found, "key": "0" * 64, "policy_label": "forged@9"}), encoding="utf-8")
    assert quick_settings(home).policy_label == "default@1"
    digest.write_text("{not json", encoding="utf-8")
    assert quick_settings(home).policy_label == "default@1"


def test_a_digest_that_cannot_be_written_leaves_the_settings_validated_each_time(home):
    (home / DIGEST_NAME).unlink(missing_ok=True)
    (home / DIGEST_NAME).mkdir()  # in the way of the digest, as an unwritable home is (also for root)
    assert quick_settings(home).policy_label == "default@1"
    assert quick_settings(home).policy_label == "default@1"
    assert (home / DIGEST_NAME).is_dir() and not list(home.glob(f"{DIGEST_NAME}.*"))


def test_the_secrets_flag_warns_of_a_config_others_may_read(home):
    _config(home, "access_secret: 'sixteen-or-more-characters'\n")
    (home / "preserve.yaml").chmod(0o644)
    assert quick_settings(home).exposed_config == home / "preserve.yaml"
    (home / "preserve.yaml").chmod(0o600)
    assert quick_settings(home).exposed_config is None


def test_the_catalog_is_read_on_either_database(tmp_path, catalog_url):
    """SQLite through the stdlib driver, PostgreSQL through a session: the same rows as the node service reads."""
    home = tmp_path / "home"
    repo = make_repo(home, catalog_url=catalog_url)
    try:
        expected = list_nodes(repo)
    finally:
        repo.close()
    with read_catalog(quick_settings(home)) as reader:
        assert reads.list_nodes(reader) == expected
        assert reader.dialect == ("sqlite" if catalog_url.startswith("sqlite") else "postgresql")
    assert [n["name"] for n in expected] == ["cas-nsl", "inst-istic", "uni-pku"]


def test_a_mistyped_home_is_refused_and_left_as_it_was(tmp_path):
    wrong = tmp_path / "typo"
    wrong.mkdir()
    with pytest.raises(CatalogNotInitialised):
        with read_catalog(quick_settings(wrong)):
            pass
    assert list(wrong.iterdir()) == []
