"""`preserve challenge`: cheap proof-of-possession spot checks between full audits."""

from __future__ import annotations

import click

from preservation.challenge import challenge_random

from .common import console, emit_json, exit_on_findings, json_option, repo, say_plain


@click.command("challenge")
@click.option("--count", type=click.IntRange(1, 100_000), default=10, help="How many copies to challenge.")
@click.option("--node", "node_name", default=None, help="Only copies on this node.")
@json_option
def challenge(count: int, node_name: str | None, as_json: bool) -> None:
    """Ask random verified copies for a digest of random bytes; exit 1 if any answer is wrong.

    A copy that fails becomes suspect and a full audit of it is queued.
    """
    outcomes = challenge_random(repo(), count=count, node_name=node_name)
    failed = [o for o in outcomes if not o.passed]
    if as_json:
        emit_json({"ok": not failed, "challenged": len(outcomes), "failed": len(failed),
                   "outcomes": [o.to_dict() for o in outcomes]})
    else:
        out = console()
        for o in outcomes:
            mark = "ok" if o.passed else f"FAILED ({o.reason})"
            say_plain(out, f"{mark:<10} {o.node}:{o.path} bytes {o.offset}+{o.length}")
        out.print(f"{len(outcomes)} copies challenged, {len(failed)} failed")
    exit_on_findings(not failed)
