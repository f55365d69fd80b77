"""A node's witness key: made 0600 with its public key beside it, refused when unsafe or unreadable."""

from __future__ import annotations

import stat

import pytest

from preservation.errors import ConfigError
from preservation.node_agent import load_witness_key
from preservation.signing_keys import parse_verifier_key


def test_witness_key_is_made_0600_with_its_public_key_and_loads(run_cli, tmp_path):
    path = tmp_path / "agent" / "witness.key"
    out = run_cli("node", "witness-key", path, "--name", "witness.cas-wuhan", "--json").json()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    name, kid, _key = parse_verifier_key(out["verifier_key"])
    assert (name, kid) == ("witness.cas-wuhan", out["key_id"])
    assert (path.parent / f"witness.cas-wuhan+{kid}.pub").read_text().strip() == out["verifier_key"]
    loaded = load_witness_key(path)
    assert (loaded.name, loaded.key_id) == ("witness.cas-wuhan", kid)
    # a witness keeps its key: a second run refuses to replace it
    before = path.read_bytes()
    run_cli("node", "witness-key", path, "--name", "witness.cas-wuhan", exit_code=6)
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", ["", "two words", "name\x1b[31m", "x" * 201, "名字"])
def test_a_bad_witness_name_is_refused(run_cli, tmp_path, name):
    err = run_cli("node", "witness-key", tmp_path / "w.key", "--name", name, "--json", exit_code=2).stderr
    assert "--name" in err and not (tmp_path / "w.key").exists()


def test_an_unsafe_or_unusable_witness_key_is_refused(run_cli, tmp_path):
    path = tmp_path / "witness.key"
    run_cli("node", "witness-key", path, "--name", "witness.uni")
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_witness_key(path)
    path.chmod(0o600)
    for pub in tmp_path.glob("*.pub"):
        pub.unlink()
    with pytest.raises(ConfigError, match="no public key file"):
        load_witness_key(path)
    path.write_text("not a key\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_witness_key(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_witness_key(tmp_path / "missing.key")


def test_the_agent_will_not_start_with_an_unsafe_witness_key(run_cli, tmp_path):
    path = tmp_path / "witness.key"
    run_cli("node", "witness-key", path, "--name", "witness.uni")
    path.chmod(0o644)
    keys = tmp_path / "keys.yaml"
    keys.write_text('keys:\n  coordinator: "test-only-key-0123456789abcdef"\n')
    keys.chmod(0o600)
    out = run_cli("node", "serve", "--storage", tmp_path.as_uri(), "--keys", keys, "--witness-key", path, "--json",
                  exit_code=None)
    assert out.exit_code not in (0, 1) and "chmod 600" in out.stderr
