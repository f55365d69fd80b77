"""`preserve ingest`: a delivery becomes a package with verified copies."""

from __future__ import annotations

import click

from preservation.errors import DeliveryRejected
from preservation.ingest import ingest as run_ingest

from .common import console, emit_json, human_bytes, json_option, repo
from .progress import byte_progress


def _parse_info(values: tuple[str, ...]) -> dict[str, str]:
    info = {}
    for v in values:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{v!r}: use KEY=VALUE", param_hint="--info")
        info[key.strip()] = value.strip()
    return info


@click.command("ingest")
@click.argument("source", type=click.Path(exists=False))
@click.option("--collection", "collection_key", required=True, help="Collection key the delivery belongs to.")
@click.option("--name", default=None, help="Package name (default: the source's name).")
@click.option("--info", multiple=True, help="Extra bag-info field KEY=VALUE (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@json_option
def ingest(source, collection_key, name, info, quiet, as_json) -> None:
    """Ingest SOURCE (directory, bag, .tar, .tar.gz, .zip) into COLLECTION."""
    try:
        with byte_progress(quiet or as_json) as progress:
            result = run_ingest(repo(), source, collection_key, name=name, bag_info=_parse_info(info),
                                progress=progress)
    except DeliveryRejected as e:
        if as_json:
            emit_json({"ok": False, "error": e.to_dict(), "findings": [f.to_dict() for f in e.findings]})
        else:
            err = console(stderr=True)
            for f in e.findings:
                err.print(f"  {f}", markup=False)
        raise
    ok = result.get("state") == "preserved"
    if as_json:
        emit_json({"ok": ok, **result})
    else:
        click.echo(f"package {result['package_id']}: {result['files']} files, {human_bytes(result['bytes'])}, "
                   f"state {result['state']}")
        for c in result.get("copies", []):
            if "error" in c:
                click.echo(f"  copy {c['replica_id']}: FAILED {c['error']['code']} {c['error']['message']}")
            else:
                click.echo(f"  copy on {c['node']}: {c['state']} ({c['files_copied']} files written, re-read and verified)")
    if not ok:
        raise SystemExit(1)
