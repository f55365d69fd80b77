"""`preserve config check` against a real node agent process: its credentials, reachability and a probe
write, read and delete through the agent; free space is not reported by an agent, and a killed agent fails."""

from __future__ import annotations

from preservation import codes


def test_a_node_agent_is_checked_through_its_protocol_and_a_killed_one_fails(world, run_cli):
    result = run_cli("config", "check", "--json", "--min-free", "1M", home=world.home)
    report = result.json()
    inst = {c["check"]: c for c in report["checks"] if c["subject"] == "inst"}
    assert {k: c["status"] for k, c in inst.items()} == {
        "node credentials": "ok", "node reachable": "ok", "node writable": "ok", "node free space": "ok"}
    assert inst["node credentials"]["message"] == "present"
    assert inst["node free space"]["message"].startswith("not reported by this storage")
    assert not any((world.agent.root / ".preserve" / "tmp").glob("config-check-*"))  # the probe was deleted
    world.agent.kill()
    report = run_cli("config", "check", "--json", "--min-free", "1M", home=world.home, exit_code=1).json()
    [down] = [c for c in report["checks"] if c["code"] == codes.NODE_NOT_ANSWERING]
    assert down["subject"] == "inst" and down["status"] == "fail"
