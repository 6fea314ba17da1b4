#!/usr/bin/env bash
# Runs chatbench against a freshly built chatd on a fresh PostgreSQL database.
#   cmd/chatbench/loadtest.sh [chatbench flags...]
#   cmd/chatbench/loadtest.sh --scenario idle --conns 19000
#   cmd/chatbench/loadtest.sh --scenario churn --duration 3m --json
# chatbench gets --server-pid (the server's RSS and CPU from /proc) and
# --postgres-cpu (the CPU of every postgres process: keep the machine's
# PostgreSQL otherwise idle while measuring).
# Environment: CHATD_ARGS (extra chatd flags, last, so they override),
# PGURL (admin URL of the server; default
# postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), PORT (chatd's
# port; default a free one), KEEP_LOG (a path: keep chatd's log there),
# CHATD (a chatd binary to run instead of building ./cmd/chatd, e.g. one
# built from a clean checkout of a commit), WEBHOOK_SINK (1: run chatd with
# webhooks on, to a local cmd/webhooksink that verifies and counts every
# event; after the run the script waits up to 60 s for the outbox to drain
# and prints the sink's counts).
set -euo pipefail
cd "$(dirname "$0")/../.."
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PORT=${PORT:-0}
DB=grainchat_loadtest_$$
export CHAT_JWT_SECRET=${CHAT_JWT_SECRET:-loadtest-secret-0123456789abcdefghijkl}
# Every connection is a file descriptor, on both ends: raise the soft limit
# as far as the hard limit allows (chatd and chatbench inherit it).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
bin=$(mktemp -d)
pid=
sinkpid=
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	if [ -n "$sinkpid" ]; then kill "$sinkpid" 2>/dev/null || true; wait "$sinkpid" 2>/dev/null || true; fi
	if [ -n "${KEEP_LOG:-}" ] && [ -f "$bin/chatd.log" ]; then cp "$bin/chatd.log" "$KEEP_LOG"; fi
	psql "$PGURL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "$bin"
}
trap cleanup EXIT
if [ -n "${CHATD:-}" ]; then cp "$CHATD" "$bin/chatd"; else go build -o "$bin/chatd" ./cmd/chatd; fi
go build -o "$bin/chatbench" ./cmd/chatbench
webhooks=
if [ -n "${WEBHOOK_SINK:-}" ]; then
	go build -o "$bin/webhooksink" ./cmd/webhooksink
	export CHAT_WEBHOOK_SECRET=${CHAT_WEBHOOK_SECRET:-loadtest-webhook-secret-0123456789}
	"$bin/webhooksink" --addr 127.0.0.1:0 >"$bin/sink.log" 2>&1 &
	sinkpid=$!
	sink=
	for _ in $(seq 100); do
		sink=$(sed -n 's|^webhooksink: listening on \(http://[^ ]*\).*|\1|p' "$bin/sink.log" | head -1)
		if [ -n "$sink" ]; then break; fi
		sleep 0.1
	done
	[ -n "$sink" ] || { cat "$bin/sink.log" >&2; exit 1; }
	webhooks="--webhook-url $sink/hook"
fi
psql "$PGURL" -qc "CREATE DATABASE $DB" >/dev/null
dburl=${PGURL/\/postgres\?/\/$DB?}
# The per-user rate limits (visitors', and staff's where the binary has one)
# are lifted (the load program measures the server, not the limiter); the node
# takes up to 100 000 sockets, so that only the file limit bounds the idle
# scenario.
staff=
# (The help is read whole first: `chatd --help | grep -q` under pipefail fails
# whenever grep exits before chatd finished writing, SIGPIPE, and left the
# staff rate on in about one run in three.)
help=$("$bin/chatd" --help 2>&1 || true)
case "$help" in *-staff-message-rate*) staff="--staff-message-rate -1" ;; esac
"$bin/chatd" --addr "127.0.0.1:$PORT" --database-url "$dburl" --log-level warn --message-rate -1 $staff \
	--max-conns 100000 --max-conns-per-user 100 $webhooks ${CHATD_ARGS:-} >"$bin/chatd.log" 2>&1 &
pid=$!
addr=
for _ in $(seq 300); do
	addr=$(sed -n 's|^chatd: listening on http://\([^ ]*\).*|\1|p' "$bin/chatd.log" | head -1)
	if [ -n "$addr" ] && curl -sf "http://$addr/readyz" >/dev/null; then break; fi
	if ! kill -0 "$pid" 2>/dev/null; then cat "$bin/chatd.log" >&2; exit 1; fi
	sleep 0.1
done
echo "chatd pid $pid on $addr (file limit $(ulimit -n)); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%FT%TZ); tree $(git describe --always --dirty 2>/dev/null || echo ?)${CHATD:+; chatd binary $CHATD}" >&2
status=0
"$bin/chatbench" --url "ws://$addr/ws/chat/" --server-pid "$pid" --postgres-cpu "$@" || status=$?
if [ -n "$sinkpid" ]; then
	# The outbox drains after the load: wait for it (bounded), then report.
	for _ in $(seq 600); do
		left=$(psql "$dburl" -tAc "SELECT (SELECT count(*) FROM webhook_queue) + (SELECT count(*) FROM webhook_deliveries)")
		[ "$left" = 0 ] && break
		sleep 0.1
	done
	echo "webhooks: $left events still waiting; sink: $(curl -s "$sink/stats")" >&2
fi
if grep -qE 'level=(WARN|ERROR)' "$bin/chatd.log"; then
	echo "chatd logged $(grep -cE 'level=(WARN|ERROR)' "$bin/chatd.log") warnings/errors; the last ones:"
	grep -E 'level=(WARN|ERROR)' "$bin/chatd.log" | tail -5
fi >&2
exit $status
