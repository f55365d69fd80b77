"""`preserve ingest`: a delivery becomes a package with verified copies."""

from __future__ import annotations

import click

from preservation.errors import DeliveryRejected, NotPreserved, WaitTimedOut
from preservation.text import check_xml_text
from preservation.ingest import ingest as run_ingest
from preservation.jobs.admin import WAIT_PRESERVED, WAIT_TIMED_OUT, wait_for_package
from preservation.units import human_bytes

from .common import PACKAGE_ID, emit_json, exit_on_findings, fail, json_option, repo, say, show_findings_of
from .progress import byte_progress


def _parse_info(values: tuple[str, ...]) -> dict[str, str]:
    """--info KEY=VALUE pairs; raises InvalidText (E113) for text XML 1.0 cannot carry, before any work."""
    info = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{v!r}: use KEY=VALUE", param_hint="--info")
        info[check_xml_text(key.strip(), "--info label")] = check_xml_text(value.strip(), f"--info {key.strip()}")
    return info


@click.command("ingest")
@click.argument("source", type=click.Path(exists=False))
@click.option("--collection", "collection_key", required=True, help="Collection key the delivery belongs to.")
@click.option("--name", default=None, help="Package name (default: the source's name).")
@click.option("--info", multiple=True, help="Extra bag-info field KEY=VALUE (repeatable).")
@click.option("--version-of", "version_of", type=PACKAGE_ID, default=None, metavar="PACKAGE_ID",
              help="The delivery is the next version of this package: only what changed is stored.")
@click.option("--allow-duplicate", is_flag=True,
              help="Ingest even when a held package has the same payload (same files, same digests).")
@click.option("--inline", is_flag=True, help="Write and verify every copy now, in this process (no workers needed).")
@click.option("--wait", is_flag=True,
              help="Wait until the workers' replication jobs have ended, showing progress: exit 0 when the package "
                   "is preserved, 32 (E602) when it is not.")
@click.option("--timeout", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="With --wait: stop waiting after this long (exit 31, E601); the jobs go on.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def ingest(source, collection_key, name, info, version_of, allow_duplicate, inline, wait, timeout, quiet,
           as_json) -> None:
    """Ingest SOURCE (directory, bag, .tar, .tar.gz, .zip) into COLLECTION.

    The delivery is checked, bagged and registered here (this host has it);
    its copies are then written and verified by `preserve worker` processes.
    --inline writes them in this process instead; --wait waits for the workers.
    --version-of PACKAGE_ID records the delivery as the package's next version
    (its complete new state; unchanged files are referenced, not stored again);
    without it, the policy's versions.match_on rules may find that package
    (on a bag-info identifier, or on title and year): the output says so.
    A delivery identical to a package already held is refused unless --allow-duplicate.
    """
    if inline and wait:
        raise click.UsageError("--inline already waits for the copies; use one of --inline and --wait")
    try:
        with byte_progress(quiet or as_json) as progress:
            bag_info = _parse_info(info)
            if name is not None:
                check_xml_text(name, "--name")
            result = run_ingest(repo(), source, collection_key, name=name, bag_info=bag_info,
                                replicate=inline, progress=progress, version_of=version_of,
                                allow_duplicate=allow_duplicate)
    except DeliveryRejected as e:
        show_findings_of(e, as_json)
        raise
    waited = None
    if wait:
        if not as_json:
            say(f"package {result['package_id']} registered; waiting for workers to write its copies …")
        waited = wait_for_package(repo().catalog, result["package_id"], timeout=timeout,
                                  on_progress=None if quiet or as_json else _show_progress)
        result.update(state=waited["state"], live_jobs=waited["live_jobs"], dead_jobs=waited["dead_jobs"],
                      timed_out=waited["outcome"] == WAIT_TIMED_OUT, wait=waited)
    queued = not inline and not wait
    ok = queued or result.get("state") == "preserved"
    if as_json:
        emit_json({"ok": ok, **result})
    else:
        say(f"package {result['package_id']}: {result['files']} files, {human_bytes(result['bytes'])}, "
                   f"state {result['state']}")
        if "matched" in result:  # the policy's versions.match_on found the package it follows
            m = result["matched"]
            say(f"  matched package {m['package_id']} on {m['field']} = {m['value']!r} (rule {m['on']})")
        if "version" in result:
            v = result["version"]
            say(f"  version {v['number']} of {v['lineage_id']}: {v['added']} added, {v['changed']} changed, "
                f"{v['removed']} removed, {v['renamed']} renamed, {v['unchanged']} unchanged; "
                f"{human_bytes(v['stored_bytes'])} stored, {human_bytes(v['referenced_bytes'])} referenced")
        if queued:
            say(f"  copies queued for workers on {', '.join(result['nodes'])} "
                       "(`preserve worker` writes them; `preserve status` shows progress)")
        for c in result.get("copies", []):
            if "error" in c:
                say(f"  copy {c['replica_id']}: FAILED {c['error']['code']} {c['error']['message']}")
            elif c.get("skipped"):
                say(f"  copy on {c['node']}: {c['state']} (already verified, nothing written)")
            else:
                say(f"  copy on {c['node']}: {c['state']} ({c['files_copied']} files written, "
                           "re-read and verified)")
    if waited is not None and waited["outcome"] != WAIT_PRESERVED:
        fail(_wait_error(waited, timeout))
    exit_on_findings(ok)


def _show_progress(snapshot: dict) -> None:
    jobs = ", ".join(f"{n} {state}" for state, n in snapshot["replication_jobs"].items()) or "none"
    say(f"  {snapshot['copies_verified']} of {snapshot['copies']} copies verified; replication jobs: {jobs}; "
        f"package {snapshot['state']}", err=True)


def _wait_error(waited: dict, timeout: float | None) -> WaitTimedOut | NotPreserved:
    """What the wait left, as the coded error the command ends with (its params: the state, in JSON too)."""
    left = {k: waited[k] for k in ("package_id", "state", "copies", "copies_verified", "live_jobs", "dead_jobs")}
    where = (f"package {waited['package_id']} is {waited['state']}, {waited['copies_verified']} of "
             f"{waited['copies']} copies verified")
    if waited["outcome"] == WAIT_TIMED_OUT:
        return WaitTimedOut(f"{where} after {timeout:g} s, {waited['live_jobs']} replication job(s) still live",
                            **left)
    return NotPreserved(f"{where}; its replication jobs have ended ({waited['dead_jobs']} dead)", **left)
