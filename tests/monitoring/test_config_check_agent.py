"""`preserve config check` against a real node agent process: its credentials, reachability and a probe
write, read and delete through the agent; free space as the agent reports it for its disk; a killed agent fails."""

from __future__ import annotations

import shutil

from preservation import codes


def test_a_node_agent_is_checked_through_its_protocol_and_a_killed_one_fails(world, run_cli):
    result = run_cli("config", "check", "--json", "--min-free", "1M", home=world.home)
    report = result.json()
    inst = {c["check"]: c for c in report["checks"] if c["subject"] == "inst"}
    assert {k: c["status"] for k, c in inst.items()} == {
        "node credentials": "ok", "node reachable": "ok", "node writable": "ok", "node free space": "ok"}
    assert inst["node credentials"]["message"] == "present"
    # the agent's own disk, from its health answer, judged against the margin
    space = inst["node free space"]["message"]
    assert "free of" in space and "(reported by the node)" in space, space
    assert inst["node free space"]["code"] is None
    short = run_cli("config", "check", "--json", "--min-free", "1000P", home=world.home, exit_code=1).json()
    [agent_short] = [c for c in short["checks"] if c["subject"] == "inst" and c["check"] == "node free space"]
    assert agent_short["status"] == "fail" and agent_short["code"] == codes.SPACE_SHORT
    # the agent measures the disk under its root (the same disk as this host sees here): a margin of 60 % of its
    # free space is met once but not twice, a warning, whatever else writes to the disk meanwhile
    margin_that_warns = int(shutil.disk_usage(world.agent.root).free * 0.6) // 2 ** 20  # MiB
    low = run_cli("config", "check", "--json", "--min-free", f"{margin_that_warns}M", home=world.home).json()
    [agent_low] = [c for c in low["checks"] if c["subject"] == "inst" and c["check"] == "node free space"]
    assert agent_low["status"] == "warn" and agent_low["code"] == codes.SPACE_LOW, agent_low
    assert not any((world.agent.root / ".preserve" / "tmp").glob("config-check-*"))  # the probe was deleted
    world.agent.kill()
    report = run_cli("config", "check", "--json", "--min-free", "1M", home=world.home, exit_code=1).json()
    [down] = [c for c in report["checks"] if c["code"] == codes.NODE_NOT_ANSWERING]
    assert down["subject"] == "inst" and down["status"] == "fail"
