"""`preserve node verify-package`: a node checks what it holds against the coordinator's signed evidence."""

from __future__ import annotations

from pathlib import Path

import click

from storage_adapters import open_adapter

from .common import console, emit_list, exit_on_findings, json_option, say_plain


@click.command("verify-package")
@click.option("--storage", "storage_uri", required=True, help="This node's storage: file:///srv/preserve or s3://….")
@click.option("--coordinator-key", "key_files", multiple=True, required=True, type=click.Path(dir_okay=False),
              help="The coordinator's public key file (<origin>+<key id>.pub); repeat for retired keys.")
@click.option("--no-files", is_flag=True, help="Check the signatures and the events file only, not the tag files.")
@click.option("--allow-unsigned", is_flag=True,
              help="Accept a record without a signature with a warning (R010) instead of refusing it (R006): only "
                   "for records written before the coordinator had a key.")
@click.argument("package_ids", nargs=-1)
@json_option
def verify_package(storage_uri: str, key_files: tuple[str, ...], no_files: bool, allow_unsigned: bool,
                   package_ids: tuple[str, ...], as_json: bool) -> None:
    """Check packages on this node's own storage against their signed evidence, without the catalog.

    Each package record's signature, its checkpoint and the tag files it names
    (which pin every payload file) are checked; with no PACKAGE_IDS, every
    package recorded on the storage.  A record without a signature is refused
    (R006) unless --allow-unsigned.  Exit 1 when any finding is an error.
    """
    # imported here: `preserve node list` loads this group, and needs none of the evidence checks (a fast start)
    from preservation.package_evidence import load_verifier_keys, verify_packages

    keys = load_verifier_keys([Path(f) for f in key_files])
    with open_adapter(storage_uri) as adapter:
        checks = verify_packages(adapter, list(package_ids), keys, node=adapter.location, check_files=not no_files,
                                 allow_unsigned=allow_unsigned)
    ok = all(c.ok for c in checks)
    if as_json:
        emit_list("packages", [c.to_dict() for c in checks], ok=ok)
    else:
        out = console()
        for c in checks:
            state = "ok" if c.ok else "FAILED"
            say_plain(out, f"{c.package_id}  {state}  signed={c.signed}  events={len(c.events)} "
                           f"({c.signed_events} signed)")
            for f in c.findings:
                say_plain(out, f"  {f}")
        say_plain(out, f"{len(checks)} package(s) checked")
    exit_on_findings(ok)
