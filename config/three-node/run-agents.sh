#!/usr/bin/env bash
# Start the three example node agents (university, cas, institute) with their
# storage roots under DIR, on 127.0.0.1:8101, 8102 and 8103 unless told otherwise.
#
#   config/three-node/run-agents.sh [--ports U,C,I] [--university-port N] [--cas-port N]
#                                   [--institute-port N] [--host ADDRESS] DIR
#
# --ports sets the three ports (university, cas, institute, in that order); the
# per-agent options set one each.  A port is ASCII digits in 1-65535 and the
# three must differ: anything else is refused (exit 2) before anything starts.
# Change the node URIs in preserve.yaml (or `preserve node set-uri`) to match.
#
# Roots: DIR/<node>/, logs: DIR/<node>.log.  Runs in the foreground; Ctrl-C
# stops all three.  The keys are the EXAMPLE keys in agents/: for trying the
# network out on one machine, never for a real node.
#
# PRESERVE names the command to run (default: the repository's
# .venv/bin/preserve, else `preserve` on PATH).
set -euo pipefail

usage() {
    echo "usage: run-agents.sh [--ports U,C,I] [--university-port N] [--cas-port N] [--institute-port N]" \
         "[--host ADDRESS] DIR   (storage roots and logs go under DIR)" >&2
    exit 2
}

refuse() {
    echo "run-agents.sh: $1" >&2
    exit 2
}

# a port: 1 to 5 ASCII digits, no sign, no leading zero, at most 65535
check_port() {
    local what="$1" value="$2"
    LC_ALL=C
    if ! [[ "$value" =~ ^[1-9][0-9]{0,4}$ ]] || [ "$value" -gt 65535 ]; then
        refuse "$what: '$value' is not a port (ASCII digits, 1-65535)"
    fi
}

nodes=(university-wuhan cas-beijing institute-shanghai)
ports=(8101 8102 8103)
host=127.0.0.1
dir=""
while [ "$#" -gt 0 ]; do
    case "$1" in
        --ports)
            [ "$#" -ge 2 ] || usage
            IFS=, read -r -a given <<<"$2"
            [ "${#given[@]}" -eq 3 ] && [[ "$2" != *,,* ]] && [[ "$2" != *, ]] \
                || refuse "--ports: give three ports, university,cas,institute (e.g. 8101,8102,8103), not '$2'"
            for i in 0 1 2; do check_port "--ports" "${given[$i]}"; ports[$i]="${given[$i]}"; done
            shift 2 ;;
        --university-port|--cas-port|--institute-port)
            [ "$#" -ge 2 ] || usage
            check_port "$1" "$2"
            case "$1" in
                --university-port) ports[0]="$2" ;;
                --cas-port) ports[1]="$2" ;;
                --institute-port) ports[2]="$2" ;;
            esac
            shift 2 ;;
        --host)
            [ "$#" -ge 2 ] || usage
            LC_ALL=C
            [[ "$2" =~ ^[A-Za-z0-9.:-]{1,253}$ ]] || refuse "--host: '$2' is not a host name or address"
            host="$2"
            shift 2 ;;
        -h|--help) usage ;;
        -*) refuse "unknown option '$1'" ;;
        *)
            [ -z "$dir" ] || usage
            dir="$1"
            shift ;;
    esac
done
[ -n "$dir" ] || usage
if [ "${ports[0]}" = "${ports[1]}" ] || [ "${ports[0]}" = "${ports[2]}" ] || [ "${ports[1]}" = "${ports[2]}" ]; then
    refuse "the three ports must differ (${ports[*]})"
fi
listen_host="$host"
[[ "$host" == *:* ]] && listen_host="[$host]"  # an IPv6 address

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
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

for i in 0 1 2; do
    node="${nodes[$i]}"
    port="${ports[$i]}"
    mkdir -p "$dir/$node"
    # The agent warns about keys files that others can read: give it a private copy.
    keys="$dir/$node.keys.yaml"
    install -m 600 "$here/agents/$node.keys.yaml" "$keys"
    "${preserve[@]}" node serve --storage "file://$dir/$node" --listen "$listen_host:$port" --keys "$keys" \
        >>"$dir/$node.log" 2>&1 &
    pids+=("$!")
    echo "$node: node+http://$listen_host:$port   root $dir/$node   log $dir/$node.log"
done

echo "three agents running; Ctrl-C stops them"
status=0
wait -n "${pids[@]}" || status=$?
echo "an agent stopped (exit $status): see the logs in $dir" >&2
exit 1
