"""`preserve node …`: register and list preservation nodes.

`node list` reads the catalog the quick way (preservation.quick); the commands that change nodes import the node
service (and SQLAlchemy under it) when they run, so that listing starts without them.
"""

from __future__ import annotations

import click

from preservation.catalog.reads import list_nodes
from preservation.catalog.vocabulary import NODE_STATUSES, ORG_TYPES
from preservation.units import human_bytes

from .common import emit_json, emit_list, json_option, parse_size, quick_catalog, repo, say, table
from .node_serve import serve, witness_key
from .node_verify import verify_package


@click.group("node")
def node() -> None:
    """Preservation nodes: register, list, change status, re-point, rename, remove, serve."""


node.add_command(serve)
node.add_command(verify_package)
node.add_command(witness_key)


@node.command("add")
@click.argument("name")
@click.option("--type", "org_type", required=True, type=click.Choice(ORG_TYPES), help="Organisation type.")
@click.option("--region", required=True, help="Region (e.g. beijing, shanghai, wuhan).")
@click.option("--uri", required=True, help="Storage URI: file:///path, s3://bucket/prefix?…, node+https://host:port")
@click.option("--organisation", default="", help="Organisation running the node.")
@click.option("--capacity", default=None, help="Capacity (e.g. 500T); unlimited if omitted.")
@click.option("--read-budget", default=None, help="Audit read budget per day (e.g. 2T); the policy's if omitted.")
@click.option("--no-probe", is_flag=True, help="Do not check that the storage answers.")
@click.option("--create", is_flag=True, help="Create a file:// root that does not exist (refused otherwise).")
@json_option
def add(name, org_type, region, uri, organisation, capacity, read_budget, no_probe, create, as_json) -> None:
    """Register node NAME after checking that its storage answers."""
    from preservation.nodes import add_node

    result = add_node(
        repo(), name, org_type, region, uri, organisation=organisation, capacity_bytes=parse_size(capacity),
        read_budget_bytes_per_day=parse_size(read_budget), probe=not no_probe, create=create,
    )
    if as_json:
        emit_json(result)
    else:
        say(f"node {result['name']} added ({result['org_type']}, {result['region']}, {result['uri']})")


@node.command("list")
@json_option
def list_(as_json: bool) -> None:
    """List nodes with their replicas and usage."""
    with quick_catalog() as reader:
        nodes = list_nodes(reader)
    if as_json:
        emit_list("nodes", nodes)
        return
    table("nodes", ["name", "type", "region", "status", "replicas", "used", "capacity", "uri"], [
        [n["name"], n["org_type"], n["region"], n["status"], n["replicas"], human_bytes(n["used_bytes"]),
         human_bytes(n["capacity_bytes"]) if n["capacity_bytes"] else "unlimited", n["uri"]]
        for n in nodes
    ])


@node.command("set-status")
@click.argument("name")
@click.argument("status", type=click.Choice(NODE_STATUSES))
@json_option
def set_status(name: str, status: str, as_json: bool) -> None:
    """Mark a node active, draining (copies move elsewhere) or offline."""
    from preservation.nodes import set_node_status

    result = set_node_status(repo(), name, status)
    if as_json:
        emit_json(result)
    else:
        say(f"node {name} is now {status}")


@node.command("set-uri")
@click.argument("name")
@click.argument("uri")
@click.option("--no-probe", is_flag=True, help="Do not check that the storage answers.")
@click.option("--create", is_flag=True, help="Create a file:// root that does not exist (refused otherwise).")
@json_option
def set_uri(name: str, uri: str, no_probe: bool, create: bool, as_json: bool) -> None:
    """Point node NAME at URI (its copies moved or re-mounted there); the next audits check them."""
    from preservation.nodes import set_node_uri

    result = set_node_uri(repo(), name, uri, probe=not no_probe, create=create)
    if as_json:
        emit_json(result)
    else:
        say(f"node {name} now at {result['uri']}")


@node.command("rename")
@click.argument("name")
@click.argument("new_name")
@json_option
def rename(name: str, new_name: str, as_json: bool) -> None:
    """Rename node NAME to NEW_NAME (its copies follow; past events keep the old name)."""
    from preservation.nodes import rename_node

    result = rename_node(repo(), name, new_name)
    if as_json:
        emit_json(result)
        return
    say(f"node {name} is now {new_name}")
    if result["credentials_to_rename"]:
        say(f"rename its entry under node_credentials in preserve.yaml from {name} to {new_name}", err=True)


@node.command("remove")
@click.argument("name")
@json_option
def remove(name: str, as_json: bool) -> None:
    """Remove drained node NAME: refused while a copy on it is still needed or a job works on it."""
    from preservation.nodes import remove_node

    result = remove_node(repo(), name)
    if as_json:
        emit_json(result)
    else:
        say(f"node {name} removed ({result['copies_forgotten']} copy record(s) forgotten; its storage is untouched)")
