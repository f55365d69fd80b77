"""`preserve restore`: write a package's bag from verified copies."""

from __future__ import annotations

import click

from preservation.restore import restore as run_restore
from preservation.units import human_bytes

from .common import PACKAGE_ID, emit_json, json_option, repo, say
from .progress import byte_progress


@click.command("restore")
@click.argument("package_id", type=PACKAGE_ID)
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--version", "version", type=click.IntRange(min=1), default=None, metavar="N",
              help="Restore version N of the package (default: the version PACKAGE_ID is).")
@click.option("--quiet", "-q", is_flag=True)
@json_option
def restore(package_id, dest, version, quiet, as_json) -> None:
    """Write the bag of PACKAGE_ID (of its version N) into the new directory DEST."""
    with byte_progress(quiet or as_json) as progress:
        result = run_restore(repo(), package_id, dest, version=version,
                             progress=(lambda b, f: progress("restore", b, f)) if progress else None)
    if as_json:
        emit_json(result)
    else:
        if "version" in result:
            say(f"version {result['version']} ({result['package_id']})")
        say(f"restored {result['files']} files ({human_bytes(result['bytes'])}) to {result['dest']}, "
                   f"every file verified (sha256+sha512) while it was read")
