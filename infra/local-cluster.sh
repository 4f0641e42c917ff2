#!/usr/bin/env bash
# A real multi-node Ray cluster on one machine, every server on 127.0.0.1: a head node and worker nodes,
# each its own raylet with its own CPU count. The tests and users share it.
#
#   infra/local-cluster.sh up [--workers 1] [--head-cpus 1] [--cpus 1] [--port 6390]
#       prints RAY_ADDRESS=127.0.0.1:<port>; run flows with --ray-address 127.0.0.1:<port>
#   infra/local-cluster.sh status     the nodes and their raylet PIDs
#   infra/local-cluster.sh down       stops every node (and nothing else)
#
# State (PIDs, ports, Ray's temp dir) lives in $RADIO_DDRM_CLUSTER_DIR (default /tmp/radio-ddrm-cluster).
# The dashboard binds 127.0.0.1:<port + 1>. To bind elsewhere, set RADIO_DDRM_CLUSTER_HOST (at your risk).
set -euo pipefail

STATE=${RADIO_DDRM_CLUSTER_DIR:-/tmp/radio-ddrm-cluster}
HOST=${RADIO_DDRM_CLUSTER_HOST:-127.0.0.1}
RAY=${RAY:-$(command -v ray || echo "$(dirname "$0")/../.venv/bin/ray")}
# Ray's servers (GCS, raylets, agents) bind 127.0.0.1 only while RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0; with it
# on they bind every interface. But `ray start --address` refuses to join a node while it is 0. So every node
# runs with 0 in its environment, and a worker node is started through `ray start` with only that CLI check
# lifted in-process (RAY_JOIN below). The tests check every listening socket of the cluster.
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled DO_NOT_TRACK=1
PY=${PY:-$(dirname "$RAY")/python}
RAY_JOIN=("$PY" -c 'import sys, ray._private.ray_constants as c, ray._private.services as s
c.ENABLE_RAY_CLUSTER = True  # the CLI check only
s.resolve_ip_for_localhost = lambda host: host  # and keep 127.0.0.1 as it is
from ray.scripts.scripts import main; sys.argv[0] = "ray"; main()')

free_ports() {  # $1 distinct free ports, held open together while chosen so that none repeats
  python3 -c 'import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

node_ports() {  # every port a node opens, chosen here so that two raylets on one host never collide
  local p; read -r -a p <<<"$(free_ports 6)"
  echo "--node-manager-port=${p[0]} --object-manager-port=${p[1]} --metrics-export-port=${p[2]}" \
       "--dashboard-agent-listen-port=${p[3]} --dashboard-agent-grpc-port=${p[4]}" \
       "--runtime-env-agent-port=${p[5]} --min-worker-port=$1 --max-worker-port=$(($1 + 199))"
}

raylet_pid() {  # the raylet listening on a node manager port
  pgrep -f "raylet.*--node_manager_port=$1( |$)" | head -n1
}

up() {
  local workers=1 head_cpus=1 cpus=1 port=6390
  while [ $# -gt 0 ]; do
    case "$1" in
      --workers) workers=$2; shift 2 ;; --head-cpus) head_cpus=$2; shift 2 ;;
      --cpus) cpus=$2; shift 2 ;; --port) port=$2; shift 2 ;;
      *) echo "unknown option $1" >&2; exit 2 ;;
    esac
  done
  if [ -f "$STATE/address" ]; then echo "a cluster is up already: $(cat "$STATE/address") (run down first)" >&2; exit 1; fi
  mkdir -p "$STATE"
  echo "$port" >"$STATE/port"
  trap 'echo "start failed; stopping what started (logs in $STATE)" >&2; stop_processes; exit 1' ERR
  local ports nm
  ports=$(node_ports 21000); nm=$(echo "$ports" | sed -E 's/.*--node-manager-port=([0-9]+).*/\1/')
  # shellcheck disable=SC2086
  "$RAY" start --head --node-ip-address="$HOST" --port="$port" --num-cpus="$head_cpus" --num-gpus=0 \
    --include-dashboard=true --dashboard-host="$HOST" --dashboard-port=$((port + 1)) --ray-client-server-port=$((port + 2)) \
    --temp-dir="$STATE/ray" --disable-usage-stats $ports >"$STATE/head.log" 2>&1
  echo "$(raylet_pid "$nm")" >"$STATE/head.raylet.pid"
  for i in $(seq 1 "$workers"); do
    ports=$(node_ports $((21000 + 200 * i))); nm=$(echo "$ports" | sed -E 's/.*--node-manager-port=([0-9]+).*/\1/')
    # shellcheck disable=SC2086
    "${RAY_JOIN[@]}" start --address="$HOST:$port" --node-ip-address="$HOST" --num-cpus="$cpus" --num-gpus=0 \
      --disable-usage-stats $ports >"$STATE/worker-$i.log" 2>&1
    echo "$(raylet_pid "$nm")" >"$STATE/worker-$i.raylet.pid"
  done
  trap - ERR
  echo "$HOST:$port" >"$STATE/address"
  echo "RAY_ADDRESS=$HOST:$port"
}

status() {
  [ -f "$STATE/address" ] || { echo "no cluster"; return 1; }
  echo "address $(cat "$STATE/address")"
  for f in "$STATE"/*.raylet.pid; do
    local pid; pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then echo "$(basename "$f" .raylet.pid) raylet $pid alive"; else echo "$(basename "$f" .raylet.pid) raylet $pid dead"; fi
  done
}

stop_processes() {
  # only this cluster's processes (their command lines name its session folder), never another Ray on the machine
  pkill -TERM -f "$STATE/ray/session" 2>/dev/null || true
  [ -f "$STATE/port" ] && pkill -TERM -f "start --address=$HOST:$(cat "$STATE/port")" 2>/dev/null || true  # a stuck join
  for _ in $(seq 1 20); do pgrep -f "$STATE/ray/session" >/dev/null || break; sleep 0.5; done
  pkill -KILL -f "$STATE/ray/session" 2>/dev/null || true
  rm -f "$STATE/address" "$STATE"/*.raylet.pid
}

down() {
  [ -f "$STATE/address" ] || pgrep -f "$STATE/ray/session" >/dev/null || { echo "no cluster"; return 0; }
  stop_processes
  echo "stopped"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up [--workers N] [--head-cpus N] [--cpus N] [--port P] | status | down" >&2; exit 2 ;;
esac
