"""The planned signature table: built once per signature install, cached atomically, never trusted when damaged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from fido import CONFIG_DIR

from preservation.formats import signature_table
from preservation.formats.identify import Signatures
from preservation.formats.signature_table import _leading_keys, _only_empty, _required_strings


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    """One table built from FIDO's installed files and its cache file (built once: it takes seconds)."""
    directory = tmp_path_factory.mktemp("signature-cache")
    table = signature_table.load(CONFIG_DIR, directory)
    (path,) = directory.glob("fido-signatures-*.json")
    return table, path


def _copy(cached, tmp_path):
    _, path = cached
    shutil.copy(path, tmp_path / path.name)
    return tmp_path / path.name


def _no_build(monkeypatch):
    def refuse(conf_dir):
        raise AssertionError("the table was rebuilt")
    monkeypatch.setattr(signature_table, "build", refuse)


def _counting_build(monkeypatch, table):
    """Count the builds; each gives the table built once for the module (a real build takes seconds)."""
    built = []

    def counting(conf_dir):
        built.append(conf_dir)
        return table
    monkeypatch.setattr(signature_table, "build", counting)
    return built


def test_a_cached_table_is_read_back_without_rebuilding(cached, tmp_path, monkeypatch):
    table, _ = cached
    _copy(cached, tmp_path)
    _no_build(monkeypatch)
    assert signature_table.load(CONFIG_DIR, tmp_path) == table
    assert len(table["signatures"]) > 1000 and table["signature_version"].startswith("v")


def test_the_cache_file_is_written_whole_with_no_temporary_left(cached):
    _, path = cached
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # the temporary file was renamed into place
    header, _, body = path.read_bytes().partition(b"\n")
    assert json.loads(header)["key"]["fido"] and json.loads(body)["formats"]


@pytest.mark.parametrize("damage", ["flip a byte of the body", "truncate", "another FIDO version", "not JSON",
                                    "empty"])
def test_a_damaged_or_stale_cache_is_rebuilt_and_replaced(cached, tmp_path, monkeypatch, damage):
    table, _ = cached
    path = _copy(cached, tmp_path)
    data = path.read_bytes()
    header, _, body = data.partition(b"\n")
    if damage == "flip a byte of the body":
        at = len(body) // 2
        data = header + b"\n" + body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1:]
    elif damage == "truncate":
        data = data[:len(data) // 2]
    elif damage == "another FIDO version":
        head = json.loads(header)
        head["key"]["fido"] = "0.0.1"
        data = json.dumps(head).encode() + b"\n" + body
    elif damage == "not JSON":
        data = b"\xff\xfe garbage\n" + body
    else:
        data = b""
    path.write_bytes(data)
    built = _counting_build(monkeypatch, table)
    assert signature_table.load(CONFIG_DIR, tmp_path) == table
    assert built == [CONFIG_DIR]
    _no_build(monkeypatch)  # and the rebuilt table was written back, sound
    assert signature_table.load(CONFIG_DIR, tmp_path) == table


def test_a_cache_directory_that_cannot_be_written_costs_only_the_rebuild(cached, tmp_path, monkeypatch):
    table, _ = cached
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the cache directory would be")
    built = _counting_build(monkeypatch, table)
    assert signature_table.load(CONFIG_DIR, blocked / "preserve") == table
    assert built == [CONFIG_DIR] and blocked.read_text().startswith("a file")


def test_the_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PRESERVE_CACHE_DIR", str(tmp_path / "explicit"))
    assert signature_table.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("PRESERVE_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert signature_table.cache_dir() == tmp_path / "xdg" / "preserve"


def test_signatures_from_the_cache_load_without_fido_s_loader(cached):
    """A process that finds the table cached never parses FIDO's XML (nor imports its update client)."""
    _, path = cached
    probe = ("import sys\nfrom preservation.formats.identify import signatures\n"
             "s = signatures()\nassert s.match(b'%PDF-1.4\\n', b'%%EOF\\n')\n"
             "print(sorted(m for m in ('fido.fido', 'fido.versions', 'requests') if m in sys.modules))")
    env = {**os.environ, "PRESERVE_CACHE_DIR": str(path.parent)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_table_read_back_answers_as_the_table_built(cached):
    table, path = cached
    fresh = Signatures(table=table)
    loaded = Signatures(table=json.loads(path.read_bytes().partition(b"\n")[2]))
    samples = [b"%PDF-1.7\n%%EOF\n", b"\x89PNG\r\n\x1a\n" + bytes(20), b"PK\x03\x04" + bytes(30),
               b"GIF89a" + bytes(20) + b"\x00\x3b",
               b"<?xml version='1.0'?><article>", b"{\\rtf1\\ansi", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"]
    for data in samples:
        assert loaded.match(data, data) == fresh.match(data, data), data
    assert loaded.match(samples[0], samples[0]) and loaded.match(samples[3], samples[3])  # PDF, GIF: not vacuous


# --- the plan of one expression: necessary conditions only ------------------------------------------


@pytest.mark.parametrize("source, offsets, keys", [
    (rb"\A%PDF-1\.[0-7]", {0}, {b"%PDF"}),
    (rb"(?s)\A.{2}ab", {2}, {b"ab"}),
    (rb"(?s)\A.{0,2}(?:ab|cd)e", {0, 1, 2}, {b"abe", b"cde"}),
    (rb"(?s)\A(?:abc|x)yz", {0}, {b"abc", b"xyz"}),  # alternatives of two lengths: cut to the shorter
    (rb"(?s)\A[\!-\xef].{104}[0-7]\x00", {105}, {bytes([d, 0]) for d in b"01234567"}),  # a wide class is skipped
    (rb"\A\x00{4}ab", {0}, {b"\x00\x00\x00\x00"}),
])
def test_leading_keys_are_the_bytes_a_match_starts_with(source, offsets, keys):
    assert _leading_keys(source) == (offsets, keys)


@pytest.mark.parametrize("source", [rb"(?s)\A.{0,1024}<html", rb"(?i)\Aabc", rb"\A[^a]", rb"\A(?:a|)b", rb"\Z"])
def test_expressions_without_a_fixed_start_have_no_key(source):
    assert _leading_keys(source) is None


def test_required_strings_are_what_every_match_contains():
    assert _required_strings(rb"(?s)\A.{0,1024}\x3c(?:HTML|html)") == {b"<HTML", b"<html"}
    assert _required_strings(rb"(?s)\A.{0,9}v .{0,8}[0-9]\.[0-9]") == {b"%d.%d" % (a, b) for a in range(10)
                                                                        for b in range(10)}
    assert _required_strings(rb"(?s)ab.{0,9}cd") is None  # nothing three bytes long
    assert _required_strings(rb"(?i)abcdef") is None  # case-insensitive: not planned


def test_only_an_empty_head_matches_an_expression_of_nothing_then_the_end():
    assert _only_empty(rb"\A\Z")
    assert not _only_empty(rb"\A%PDF") and not _only_empty(rb"(?s)\A.{0,4}\Z")
