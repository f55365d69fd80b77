"""`preserve witness-keys …`: the node keys whose co-signatures on checkpoints count (docs/evidence.md).

On the coordinator.  (`preserve node witness-key PATH` is the node operator's command that makes a key.)
"""

from __future__ import annotations

from pathlib import Path

import click

from preservation.witness.keys import list_witness_keys, show_witness_key, trust_witness_key

from .common import emit_json, emit_list, json_option, repo, say, table

FINGERPRINT = click.option(
    "--fingerprint", "confirm_fingerprint", required=True, metavar="HEX",
    help="The key's SHA-256 fingerprint as the node's operator read it out (at least 16 hex digits; "
         "`preserve node witness-key` printed it).")
KEY_FILE = click.option(
    "--key-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="The public key file the node's operator sent (<name>+<key id>.pub); without it the key is fetched "
         "from the node's agent.")


@click.group("witness-keys")
def witness_keys() -> None:
    """The nodes' witness keys: list, show, trust (import) and rotate them."""


@witness_keys.command("list")
@json_option
def list_(as_json: bool) -> None:
    """Every node with the witness key trusted for it and its retired keys (no node is asked)."""
    rows = list_witness_keys(repo())
    if as_json:
        emit_list("nodes", rows)
        return
    table("witness keys", ["node", "key", "fingerprint", "retired"],
          [[r["node"], r["trusted"]["key_id"] if r["trusted"] else "none",
            r["trusted"]["fingerprint"] if r["trusted"] else "",
            ", ".join(x["key_id"] for x in r["retired"])] for r in rows])


@witness_keys.command("show")
@click.argument("node")
@json_option
def show(node: str, as_json: bool) -> None:
    """NODE as a witness: the key trusted for it, and what the node holds (an agent is asked for its key)."""
    out = show_witness_key(repo(), node)
    if as_json:
        emit_json(out)
        return
    trusted = out["trusted"]
    say(f"node {out['node']} ({out['witness']}): "
        + (f"trusted key {trusted['key_id']}, fingerprint {trusted['fingerprint']}" if trusted else "no key trusted"))
    for old in out["retired"]:
        say(f"  retired key {old['key_id']}: counts on checkpoints up to {old['valid_through']} events")
    agent = out.get("agent_key")
    if agent is not None and "error" in agent:
        say(f"  its agent did not give its key: {agent['error']['message']}", err=True)
    elif agent is not None:
        state = "the trusted key" if agent["trusted"] else "NOT the trusted key"
        say(f"  its agent co-signs with key {agent['key_id']}, fingerprint {agent['fingerprint']} ({state})")
        click.echo(agent["verifier_key"])
    record = out.get("record", False)
    if record is None:
        say("  its witness record holds no checkpoint yet")
    elif record and "error" in record:
        say(f"  its witness record cannot be read: {record['error']['message']}", err=True)
    elif record:
        say(f"  the coordinator's record there holds checkpoints up to {record['size']} events, log keys: "
            + ", ".join(k.split("+")[1] for k in record["log_keys"]))


def _said(out: dict) -> None:
    if not out["changed"]:
        say(f"node {out['node']}: key {out['key_id']} is trusted already")
        return
    retired = (f"; key {out['retired']} retired, still counting on checkpoints up to "
               f"{out['retired_valid_through']} events" if out["retired"] else "")
    say(f"node {out['node']}: key {out['key_id']} trusted (fingerprint {out['fingerprint']}){retired}")


@witness_keys.command("trust")
@click.argument("node")
@FINGERPRINT
@KEY_FILE
@json_option
def trust(node: str, confirm_fingerprint: str, key_file: Path | None, as_json: bool) -> None:
    """Trust NODE's witness key, fetched from its agent or read from --key-file, once its fingerprint matches;
    for a node with no key yet (a node that has one: `rotate`)."""
    out = trust_witness_key(repo(), node, confirm_fingerprint=confirm_fingerprint, key_file=key_file)
    if as_json:
        emit_json(out)
    else:
        _said(out)


@witness_keys.command("rotate")
@click.argument("node")
@FINGERPRINT
@KEY_FILE
@json_option
def rotate(node: str, confirm_fingerprint: str, key_file: Path | None, as_json: bool) -> None:
    """Replace NODE's witness key by its new one (from its agent or --key-file, fingerprint confirmed); the old
    key is retired and its co-signatures still count on the checkpoints signed until now."""
    out = trust_witness_key(repo(), node, confirm_fingerprint=confirm_fingerprint, key_file=key_file, rotate=True)
    if as_json:
        emit_json(out)
    else:
        _said(out)
