"""`preserve restore`: write a package's bag from verified copies (with --partial, every intact file)."""

from __future__ import annotations

import click

from preservation.errors import RestoreIncomplete
from preservation.restore import restore as run_restore
from preservation.units import human_bytes

from .common import PACKAGE_ID, emit_json, fail, json_option, repo, say
from .progress import byte_progress


@click.command("restore")
@click.argument("package_id", type=PACKAGE_ID)
@click.argument("dest", type=click.Path(file_okay=False))
@click.option("--version", "version", type=click.IntRange(min=1), default=None, metavar="N",
              help="Restore version N of the package (default: the version PACKAGE_ID is).")
@click.option("--partial", is_flag=True,
              help="Of a damaged package, write every file some copy holds right and report the others "
                   "(DEST.restore-report.json and .txt); exits 28 when any is missing.")
@click.option("--quiet", "-q", is_flag=True)
@json_option
def restore(package_id, dest, version, partial, quiet, as_json) -> None:
    """Write the bag of PACKAGE_ID (of its version N) into the new directory DEST."""
    with byte_progress(quiet or as_json) as progress:
        result = run_restore(repo(), package_id, dest, version=version, partial=partial,
                             progress=(lambda b, f: progress("restore", b, f)) if progress else None)
    incomplete = None
    if partial and not result["complete"]:
        incomplete = RestoreIncomplete(
            f"restored {result['files']} files to {result['dest']}; {result['files_missing']} file(s) have no copy "
            f"that holds them right and were not written: see {result['report']['text']}",
            files_missing=result["files_missing"], report=result["report"]["json"])
    if as_json:
        emit_json(result)
    else:
        if "version" in result:
            say(f"version {result['version']} ({result['package_id']})")
        if incomplete:
            say(f"re-supply the missing files: preserve repair {result['package_id']} --from-file PATH=LOCALFILE",
                err=True)
        else:
            say(f"restored {result['files']} files ({human_bytes(result['bytes'])}) to {result['dest']}, "
                f"every file verified (sha256+sha512) while it was read")
    if incomplete:
        fail(incomplete)  # the files written stay: the exit code and the report say what is missing
