"""`preserve ingest`: a delivery becomes a package with verified copies."""

from __future__ import annotations

import click

from preservation.errors import DeliveryRejected
from preservation.text import check_xml_text
from preservation.ingest import ingest as run_ingest
from preservation.jobs.admin import wait_for_package
from preservation.units import human_bytes

from .common import PACKAGE_ID, emit_json, exit_on_findings, json_option, repo, say, show_findings_of
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
@click.option("--wait", is_flag=True, help="Wait until workers have preserved the package (exit 1 if they do not).")
@click.option("--timeout", type=click.FloatRange(0), default=None, metavar="SECONDS",
              help="With --wait: give up after this long.")
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
    if wait:
        if not as_json:
            say(f"package {result['package_id']} registered; waiting for workers to write its copies …")
        waited = wait_for_package(repo().catalog, result["package_id"], timeout=timeout)
        result.update(state=waited["state"], live_jobs=waited["live_jobs"], dead_jobs=waited["dead_jobs"],
                      timed_out=waited["timed_out"])
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
        if wait and not ok:
            why = "timed out" if result["timed_out"] else f"{result['dead_jobs']} dead job(s)"
            say(f"  not preserved ({why}): see `preserve jobs list --state dead`")
    exit_on_findings(ok)
