#!/usr/bin/env bash
# Measures the inbox's fan-out to staff on another node: a 2-node chatd
# cluster (automanaged membership, one fresh PostgreSQL database), the node
# that does not host the inbox found through /debug/cluster, and chatbench's
# admins scenario (every visitor and staff socket) against that node, so that
# every delivery to staff crosses from the inbox's node. Prints the run's
# report and both nodes' CPU time.
#   cmd/chatbench/inboxrelay.sh [chatbench flags...]
#   cmd/chatbench/inboxrelay.sh --admins 100 --users 200 --rate 400 --duration 10s --warmup 2s
# Environment: CHATD (a chatd binary instead of building ./cmd/chatd), PGURL
# (admin URL of the server; default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), BASE_PORT
# (the nodes use BASE_PORT+1..+2 for HTTP, +11..+12 for the cluster, +21..+22
# for health; default 18200).
set -euo pipefail
cd "$(dirname "$0")/../.."
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
BASE=${BASE_PORT:-18200}
DB=grainchat_inboxrelay_$$
export CHAT_JWT_SECRET=${CHAT_JWT_SECRET:-loadtest-secret-0123456789abcdefghijkl}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bin=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	psql "$PGURL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$bin"
}
trap cleanup EXIT
if [ -n "${CHATD:-}" ]; then cp "$CHATD" "$bin/chatd"; else go build -o "$bin/chatd" ./cmd/chatd; fi
go build -o "$bin/chatbench" ./cmd/chatbench
psql "$PGURL" -qc "CREATE DATABASE $DB" >/dev/null
dburl=${PGURL/\/postgres\?/\/$DB?}
peers="127.0.0.1:$((BASE + 21)),127.0.0.1:$((BASE + 22))"
for i in 1 2; do
	"$bin/chatd" --addr "127.0.0.1:$((BASE + i))" --database-url "$dburl" --cluster-provider automanaged \
		--cluster-name inboxrelay --cluster-port $((BASE + 10 + i)) --automanaged-listen "127.0.0.1:$((BASE + 20 + i))" \
		--cluster-peers "$peers" --pprof --message-rate -1 --staff-message-rate -1 --max-conns 100000 \
		--max-conns-per-user 1000 --log-level warn >"$bin/node$i.log" 2>&1 &
	pids+=($!)
	# The first node migrates the database before the second starts.
	for _ in $(seq 300); do curl -sf "http://127.0.0.1:$((BASE + i))/readyz" >/dev/null && break; sleep 0.1; done
done
status() { curl -sf "http://127.0.0.1:$((BASE + 1))/debug/cluster"; }
for _ in $(seq 100); do
	[ "$(status | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["members"]))')" = 2 ] && break
	sleep 0.1
done
owner=$(status | python3 -c 'import json,sys; print(json.load(sys.stdin)["inbox_owner"])')
if [ "$owner" = "127.0.0.1:$((BASE + 11))" ]; then inbox=0 other=1; else inbox=1 other=0; fi
url="ws://127.0.0.1:$((BASE + 1 + other))/ws/chat/"
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
a0=$(cpu "${pids[$inbox]}") b0=$(cpu "${pids[$other]}")
echo "inbox on $owner; chatbench against $url; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); tree $(git describe --always --dirty 2>/dev/null || echo ?)${CHATD:+; chatd binary $CHATD}" >&2
status=0
"$bin/chatbench" --url "$url" --scenario admins --metrics-url - "$@" || status=$?
a1=$(cpu "${pids[$inbox]}") b1=$(cpu "${pids[$other]}")
echo "CPU during the run: inbox's node $(((a1 - a0) * 1000 / hz)) ms, staff's node $(((b1 - b0) * 1000 / hz)) ms"
exit $status
