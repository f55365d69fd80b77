"""`preserve item show DOI`, as a table and as JSON, and its errors."""

from __future__ import annotations

import hashlib
import json

from preservation.ingest import ingest

from .samples import jats, jats_delivery, write


def test_item_show(repo, run_cli, tmp_path):
    root = tmp_path / "delivery"
    dois = jats_delivery(root, 2)
    package_id = ingest(repo, root, "journals")["package_id"]
    home = repo.settings.home
    shown = run_cli("item", "show", f"https://doi.org/{dois[0].upper()}", "--json", home=home).json()
    pdf = (root / "期刊/物理学报/第01篇.pdf").read_bytes()
    assert shown["doi"] == dois[0] and shown["title"] == "拓扑绝缘体的表面态（1）"
    assert shown["authors"] == ["王, 小明", "李, 华"] and shown["journal"]["title"] == "物理学报"
    assert shown["journal"]["identifiers"] == [{"scheme": "issn_print", "value": "1000-3290"}]
    assert shown["package"]["id"] == package_id and shown["package"]["state"] == "preserved"
    assert sorted(c["state"] for c in shown["package"]["copies"]) == ["verified"] * 3
    assert shown["files"][1] == {"path": "data/期刊/物理学报/第01篇.pdf", "role": "fulltext", "size": len(pdf),
                                 "sha256": hashlib.sha256(pdf).hexdigest()}
    text = run_cli("item", "show", dois[1], home=home).output
    assert "拓扑绝缘体的表面态（2）" in text and "物理学报" in text and "preserved" in text
    assert hashlib.sha256((root / "期刊/物理学报/第02篇.pdf").read_bytes()).hexdigest() in text


def test_item_show_escapes_what_it_prints(repo, run_cli, tmp_path):
    root = tmp_path / "delivery"
    article = ('<article-id pub-id-type="doi">10.7498/aps.68.20191234</article-id>'
               "<title-group><article-title>[bold red]标题[/bold red] \u202e反</article-title></title-group>")
    write(root, "a.xml", jats(article=article))
    ingest(repo, root, "journals")
    out = run_cli("item", "show", "10.7498/aps.68.20191234", home=repo.settings.home).output
    assert "[bold red]标题[/bold red]" in out and "\u202e" not in out and "\\u202e" in out
    raw = run_cli("item", "show", "10.7498/aps.68.20191234", "--json", home=repo.settings.home).output
    assert "\u202e" not in raw and json.loads(raw)["title"] == "[bold red]标题[/bold red] \u202e反"


def test_item_show_errors(repo, run_cli):
    home = repo.settings.home
    missing = run_cli("item", "show", "10.7498/aps.68.20199999", "--json", home=home, exit_code=5)
    assert json.loads(missing.stderr)["error"]["code"] == "E110"
    bad = run_cli("item", "show", "not-a-doi", "--json", home=home, exit_code=19)
    assert json.loads(bad.stderr)["error"]["code"] == "E115"
    assert "E115" in run_cli("item", "show", "10.1/\x1b[31m", home=home, exit_code=19).stderr
