#!/usr/bin/env bash
# Runs chatbench against a freshly built chatd on a fresh PostgreSQL database.
#   cmd/chatbench/loadtest.sh [chatbench flags...]
# Environment: CHATD_ARGS (extra chatd flags), PGURL (admin URL of the server;
# default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), PORT (default 18090).
set -euo pipefail
cd "$(dirname "$0")/../.."
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable}
PORT=${PORT:-18090}
DB=grainchat_loadtest
export CHAT_JWT_SECRET=${CHAT_JWT_SECRET:-loadtest-secret-0123456789abcdefghijkl}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/chatd" ./cmd/chatd
go build -o "$bin/chatbench" ./cmd/chatbench
psql "$PGURL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
dburl=${PGURL/\/postgres\?/\/$DB?}
# The per-user rate limit is lifted: the load program measures the server, not the limiter.
"$bin/chatd" --addr 127.0.0.1:$PORT --database-url "$dburl" --log-level warn --message-rate -1 --max-conns-per-user 100 ${CHATD_ARGS:-} >"$bin/chatd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$bin"' EXIT
for _ in $(seq 100); do curl -sf "127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
echo "chatd pid $pid; $(nproc) cores; $(date -u +%FT%TZ)"
"$bin/chatbench" --url "ws://127.0.0.1:$PORT/ws/chat/" "$@"
