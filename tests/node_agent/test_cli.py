"""`preserve node serve`: its keys, its refusals at start-up and their exit codes, its place in the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from preservation.errors import ConfigError
from preservation.node_agent import load_keys, parse_listen

from .agents import KEY, KEY_ID, REPO, write_keys_file


def test_keys_from_a_yaml_file(tmp_path):
    path = write_keys_file(tmp_path / "keys.yaml", {KEY_ID: KEY, "auditor": "another-test-only-key-000"})
    assert load_keys(path) == {KEY_ID: KEY.encode(), "auditor": b"another-test-only-key-000"}


def test_keys_from_the_environment_as_json():
    environ = {"PRESERVE_AGENT_KEYS": json.dumps({"keys": {KEY_ID: KEY}})}
    assert load_keys(None, environ) == {KEY_ID: KEY.encode()}


@pytest.mark.parametrize(
    "text,problem",
    [
        ("keys: {}", "names no keys"),
        ("keys: {coordinator: short}", "at least 16"),
        ("keys: {'bad id!': 'long-enough-secret-0000'}", "key id"),
        ("coordinator: long-enough-secret-0000", "mapping 'keys:'"),
        ("keys: [unclosed", "not valid YAML"),
    ],
)
def test_bad_keys_are_refused_with_the_reason(tmp_path, text, problem):
    path = tmp_path / "keys.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=problem):
        load_keys(path)


def test_no_keys_at_all_is_refused():
    with pytest.raises(ConfigError, match="--keys FILE or set PRESERVE_AGENT_KEYS"):
        load_keys(None, {})


@pytest.mark.parametrize("listen", ["8101", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", ":8101",
                                    "127.0.0.1:８１０１", "127.0.0.1:+8101", "127.0.0.1:0", "host name:8101"])
def test_bad_listen_addresses(listen):
    with pytest.raises(ConfigError, match="HOST:PORT"):
        parse_listen(listen)


def test_listen_addresses():
    assert parse_listen("127.0.0.1:8101") == ("127.0.0.1", 8101)
    assert parse_listen("[::1]:8102") == ("::1", 8102)


def run_serve(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "preservation.cli.node_serve", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


@pytest.mark.parametrize(
    "extra,message",
    [
        ([], "no keys"),
        (["--keys", "/nonexistent/keys.yaml"], "cannot read the keys file"),
        (["--keys", "{keys}", "--tls-cert", "{keys}"], "both --tls-cert and --tls-key"),
        (["--keys", "{keys}", "--listen", "nowhere"], "HOST:PORT"),
    ],
)
def test_serve_refuses_to_start_with_exit_code_4(tmp_path, extra, message):
    keys = write_keys_file(tmp_path / "keys.yaml", {KEY_ID: KEY})
    args = [a.format(keys=keys) for a in extra]
    result = run_serve("--storage", (tmp_path / "root").as_uri(), *args, env={"PRESERVE_AGENT_KEYS": ""})
    assert result.returncode == ConfigError.exit_code == 4, result.stderr
    assert "E100" in result.stderr and message in result.stderr


def test_serve_is_a_subcommand_of_preserve_node():
    preserve = REPO / ".venv" / "bin" / "preserve"
    command = [str(preserve)] if preserve.exists() else [sys.executable, "-m", "preservation.cli.main"]
    result = subprocess.run(
        [*command, "node", "serve", "--help"], capture_output=True, text=True, timeout=60, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    for option in ("--storage", "--listen", "--keys", "--tls-cert", "--tls-key", "--allow-delete"):
        assert option in result.stdout
