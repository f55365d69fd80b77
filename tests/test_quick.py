"""The quick commands' settings (preservation.quick): a digest of the validated values, never stale, never looser.

The digest spares `preserve status` and `preserve node list` the pydantic models (issue 22 point 3); what they
read through it must always be what validating the settings and the policy in full gives, and a file that does
not validate must be refused as before.
"""

from __future__ import annotations

import json
import os
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


def _policy(path, name: str, interval: int) -> None:
    path.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("name: default", f"name: {name}")
                    .replace("interval_days: 90", f"interval_days: {interval}"), encoding="utf-8")


def _point(link, target) -> None:
    """Make ``link`` a symlink to ``target``, replacing the one there at once (as an operator's ln -sfn does)."""
    new = link.with_name(link.name + ".new")
    new.symlink_to(target)
    new.replace(link)


def test_a_repointed_policy_link_is_validated_again(home):
    """`policy: current.yaml`, a symlink moved from one file to another: the next look reads the new one."""
    _policy(home / "p1.yaml", "first", 30)
    _policy(home / "p2.yaml", "second", 7)
    _point(home / "current.yaml", "p1.yaml")
    _config(home, "policy: current.yaml\n")
    assert quick_settings(home).policy_label == "first@1"
    _point(home / "current.yaml", "p2.yaml")  # neither preserve.yaml nor p1.yaml changed
    found = quick_settings(home)
    assert (found.policy_label, found.audit_interval_days) == ("second@1", 7)


def test_a_repointed_directory_on_the_policy_path_is_validated_again(home):
    for version, interval in (("v1", 30), ("v2", 7)):
        (home / version).mkdir()
        _policy(home / version / "policy.yaml", version, interval)
    _point(home / "conf", "v1")
    _config(home, "policy: conf/policy.yaml\n")
    assert quick_settings(home).policy_label == "v1@1"
    _point(home / "conf", "v2")
    assert quick_settings(home).audit_interval_days == 7


def test_a_repointed_config_link_is_validated_again(home, monkeypatch):
    """preserve.yaml a symlink: repointed, even to the same bytes, the next run validates in full again."""
    import preservation.quick as quick

    (home / "a.yaml").write_text("monitoring:\n  silent_after_seconds: 300\n", encoding="utf-8")
    (home / "b.yaml").write_text("monitoring:\n  silent_after_seconds: 300\n", encoding="utf-8")
    (home / "c.yaml").write_text("monitoring:\n  silent_after_seconds: 600\n", encoding="utf-8")
    _point(home / "preserve.yaml", "a.yaml")
    assert quick_settings(home).monitoring.silent_after_seconds == 300
    validated = []
    real = quick._validated
    monkeypatch.setattr(quick, "_validated", lambda *a: validated.append(a) or real(*a))
    assert quick_settings(home).monitoring.silent_after_seconds == 300 and validated == []  # from the digest
    _point(home / "preserve.yaml", "b.yaml")
    assert quick_settings(home).monitoring.silent_after_seconds == 300 and len(validated) == 1
    _point(home / "preserve.yaml", "c.yaml")
    assert quick_settings(home).monitoring.silent_after_seconds == 600


def test_a_catalog_password_is_never_written(home, monkeypatch):
    """A catalog other than SQLite gets no digest (its URL may hold a password); one left there is removed."""
    url = "postgresql+psycopg://preserve:s3cret-pw@127.0.0.1:5432/preserve"
    (home / DIGEST_NAME).write_text(json.dumps({"catalog_url": url}), encoding="utf-8")  # as an older version wrote
    (home / DIGEST_NAME).chmod(0o600)
    monkeypatch.setenv("PRESERVE_CATALOG", url)
    found = quick_settings(home)
    assert found.catalog_url == url and "s3cret-pw" not in found.catalog_display
    assert not (home / DIGEST_NAME).exists()
    assert not [p for p in home.rglob("*") if p.is_file() and b"s3cret-pw" in p.read_bytes()]
    _config(home, f"catalog_url: '{url}'\n")  # in the config: the same, nothing copied out of it
    monkeypatch.delenv("PRESERVE_CATALOG")
    assert quick_settings(home).catalog_url == url
    assert not (home / DIGEST_NAME).exists() and not list(home.glob(f"{DIGEST_NAME}*"))


def test_a_digest_naming_another_database_is_not_used(home):
    quick_settings(home)
    digest = home / DIGEST_NAME
    found = json.loads(digest.read_text(encoding="utf-8"))
    digest.write_text(json.dumps({**found, "catalog_url": "postgresql://x@h/d"}), encoding="utf-8")
    assert quick_settings(home).catalog_url == f"sqlite:///{home / 'catalog.sqlite'}"


def test_the_digest_is_private_whatever_the_umask(home, monkeypatch):
    import preservation.quick as quick

    old = os.umask(0o277)
    try:
        quick_settings(home)
    finally:
        os.umask(old)
    digest = home / DIGEST_NAME
    assert stat.S_IMODE(digest.stat().st_mode) == 0o600 and digest.stat().st_uid == os.geteuid()
    monkeypatch.setattr(quick, "_validated", lambda *a: pytest.fail("validated again: the digest was not used"))
    assert quick_settings(home).policy_label == "default@1"


@pytest.mark.parametrize("planted", ["symlink", "file"])
def test_the_temporary_is_a_new_file(home, tmp_path, monkeypatch, planted):
    """Whatever is already at the temporary's name (a symlink to another file, a file) is neither followed nor
    written: O_CREAT|O_EXCL|O_NOFOLLOW."""
    import preservation.quick as quick

    partial = home / f"{DIGEST_NAME}.planted.partial"
    monkeypatch.setattr(quick, "_partial", lambda path: partial)
    victim = tmp_path / "victim"
    victim.write_text("keep me", encoding="utf-8")
    if planted == "symlink":
        partial.symlink_to(victim)
    else:
        partial.write_text("keep me", encoding="utf-8")
    assert quick_settings(home).policy_label == "default@1"
    assert victim.read_text(encoding="utf-8") == "keep me"
    assert partial.is_symlink() if planted == "symlink" else partial.read_text(encoding="utf-8") == "keep me"
    assert not (home / DIGEST_NAME).exists()  # this time: the next run, with a new name, writes it
    monkeypatch.undo()
    quick_settings(home)
    assert (home / DIGEST_NAME).is_file() and not (home / DIGEST_NAME).is_symlink()


def _forge(home) -> dict:
    """A digest as this home's, but for a policy label nobody configured; the genuine one stays in place."""
    quick_settings(home)
    found = json.loads((home / DIGEST_NAME).read_text(encoding="utf-8"))
    return {**found, "policy_label": "forged@9"}


def test_a_digest_that_is_a_symlink_is_not_believed(home, tmp_path):
    forged = tmp_path / "elsewhere.json"
    forged.write_text(json.dumps(_forge(home)), encoding="utf-8")
    forged.chmod(0o600)
    (home / DIGEST_NAME).unlink()
    (home / DIGEST_NAME).symlink_to(forged)
    assert quick_settings(home).policy_label == "default@1"
    assert not (home / DIGEST_NAME).is_symlink() and json.loads(forged.read_text())["policy_label"] == "forged@9"


def test_a_digest_that_is_not_a_regular_file_is_not_believed(home):
    """A FIFO in its place: neither read (which would wait for a writer for ever) nor believed."""
    quick_settings(home)
    probe = (f"import os\nfrom preservation.quick import quick_settings\np = {str(home / DIGEST_NAME)!r}\n"
             f"os.unlink(p)\nos.mkfifo(p, 0o600)\nprint(quick_settings({str(home)!r}).policy_label)\n"
             "print(os.path.isfile(p))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["default@1", "True"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o400, 0o700])
def test_a_digest_others_may_read_or_not_0600_is_not_believed(home, mode):
    forged = _forge(home)
    (home / DIGEST_NAME).write_text(json.dumps(forged), encoding="utf-8")
    (home / DIGEST_NAME).chmod(mode)
    assert quick_settings(home).policy_label == "default@1"
    assert stat.S_IMODE((home / DIGEST_NAME).stat().st_mode) == 0o600


def test_a_digest_owned_by_another_user_is_not_believed(home, monkeypatch):
    forged = _forge(home)
    (home / DIGEST_NAME).write_text(json.dumps(forged), encoding="utf-8")
    assert quick_settings(home).policy_label == "forged@9"  # the probe is sound: ours, 0600, the key right
    (home / DIGEST_NAME).write_text(json.dumps(forged), encoding="utf-8")
    us = os.geteuid()
    monkeypatch.setattr(os, "geteuid", lambda: us + 1)  # the same file, now another user's as far as we can tell
    assert quick_settings(home).policy_label == "default@1"
