#!/usr/bin/env bash
# Start the three example node agents (university, cas, institute) on
# 127.0.0.1:8101, 8102 and 8103, with their storage roots under DIR.
#
#   config/three-node/run-agents.sh DIR
#
# Roots: DIR/<node>/, logs: DIR/<node>.log.  Runs in the foreground; Ctrl-C
# stops all three.  The keys are the EXAMPLE keys in agents/: for trying the
# network out on one machine, never for a real node.
#
# PRESERVE names the command to run (default: the repository's
# .venv/bin/preserve, else `preserve` on PATH).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="${1:?usage: run-agents.sh DIR   (storage roots and logs go under DIR)}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

if [ -n "${PRESERVE:-}" ]; then
    read -r -a preserve <<<"$PRESERVE"
elif [ -x "$repo/.venv/bin/preserve" ]; then
    preserve=("$repo/.venv/bin/preserve")
else
    preserve=(preserve)
fi

pids=()
stop() {
    trap - EXIT INT TERM
    if [ "${#pids[@]}" -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null || true
        wait "${pids[@]}" 2>/dev/null || true
    fi
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

port=8101
for node in university-wuhan cas-beijing institute-shanghai; do
    mkdir -p "$dir/$node"
    # The agent warns about keys files that others can read: give it a private copy.
    keys="$dir/$node.keys.yaml"
    install -m 600 "$here/agents/$node.keys.yaml" "$keys"
    "${preserve[@]}" node serve --storage "file://$dir/$node" --listen "127.0.0.1:$port" --keys "$keys" \
        >>"$dir/$node.log" 2>&1 &
    pids+=("$!")
    echo "$node: node+http://127.0.0.1:$port   root $dir/$node   log $dir/$node.log"
    port=$((port + 1))
done

echo "three agents running; Ctrl-C stops them"
status=0
wait -n "${pids[@]}" || status=$?
echo "an agent stopped (exit $status): see the logs in $dir" >&2
exit 1
