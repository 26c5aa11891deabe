#!/usr/bin/env bash
# Starts Remit (built by `cargo leptos build`) on a fresh database and a free port, runs the
# Playwright suite against it in headless Chromium, then stops the server and drops the database.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"
pg="${REMIT_PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
db="remit_e2e_$$_$(date +%s)"
log="$root/target/e2e/server.log"
mkdir -p "$root/target/e2e"

export APP_ENV=development
# The tests make their own tenants and data; the demo month has its own test.
export DEMO_DATA=accounts
export DATABASE_URL="$pg/$db"
export BIND_ADDR="127.0.0.1:$port"
export PUBLIC_BASE_URL="http://127.0.0.1:$port"
export REMIT_ENCRYPTION_KEY="$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
export LEPTOS_SITE_ROOT="$root/target/site"
export RUST_LOG="${RUST_LOG:-info}"

sandbox_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
sandbox_key="sk_test_e2e_$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
export STRIPE_SANDBOX_ADDR="127.0.0.1:$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

"$bin/remit" > "$log" 2>&1 &
server=$!
# A standalone sandbox with a known key, for the tests of the sandbox's own pages.
"$bin/stripe-sandbox" --port "$sandbox_port" --secret-key "$sandbox_key" > "$root/target/e2e/sandbox.log" 2>&1 &
sandbox=$!
# Stops a process with SIGTERM and waits for it, at most 90 s (Remit's own worst case is about
# a minute: the drain of a request in flight, the jobs' grace, the pool and the runtime); one that
# is still there is killed and its log shown, so a stop that hangs is seen rather than holding
# the run until CI's limit.
stop() {
  local pid="$1" name="$2" log="$3"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 900); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  echo "$name did not stop within 90 s of SIGTERM; killed. The end of its log:"
  tail -n 40 "$log"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$server" remit "$log"
  stop "$sandbox" stripe-sandbox "$root/target/e2e/sandbox.log"
  for name in "$db" "${db}_stripe_sandbox"; do
    timeout 60 psql "$pg/postgres" -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

for _ in $(seq 1 300); do
  if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "remit exited early:"; cat "$log"; exit 1; fi
  sleep 0.1
done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "remit did not come up:"; cat "$log"; exit 1; }

cd "$here"
# The suite takes minutes; a Playwright that has not ended after 30 fails the run instead of
# holding it to CI's limit. `--foreground` keeps it in the terminal's process group, so Ctrl-C
# reaches it.
status=0
REMIT_BASE_URL="$PUBLIC_BASE_URL" REMIT_SERVER_LOG="$log" \
REMIT_SANDBOX_URL="http://127.0.0.1:$sandbox_port" REMIT_SANDBOX_KEY="$sandbox_key" \
  timeout --foreground --kill-after=30 1800 npx playwright test "$@" || status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "Playwright had not finished after 30 minutes and was stopped."
fi
exit "$status"
