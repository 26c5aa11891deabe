#!/usr/bin/env bash
# Benchmark: retrieve calls against the Stripe sandbox (release build) at 32 concurrent
# connections, measured by wrk for 15 seconds. The target is 2,000 requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."
target=2000
cargo build --quiet --release -p stripe-sandbox --bin stripe-sandbox
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
key="sk_test_bench"
"${CARGO_TARGET_DIR:-target}/release/stripe-sandbox" --port "$port" --secret-key "$key" > /dev/null 2>&1 &
sandbox=$!
trap 'kill $sandbox 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs -o /dev/null -u "$key:" "http://127.0.0.1:$port/v1/customers" && break; sleep 0.1; done
customer="$(curl -fs -u "$key:" -d email=bench@example.com -d name=Bench "http://127.0.0.1:$port/v1/customers" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
out="$(wrk -t2 -c32 -d15s --latency -H "Authorization: Bearer $key" "http://127.0.0.1:$port/v1/customers/$customer")"
rps="$(awk '/Requests\/sec/ { print int($2) }' <<<"$out")"
p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
errors="$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out")"
echo "sandbox retrieve (GET /v1/customers/{id}), 32 connections, 15 s: ${rps} requests/s, p99 ${p99}${errors:+, $errors} (target >= ${target}/s)"
if [ -n "$errors" ] || [ "$rps" -lt "$target" ]; then
  echo "$out"
  exit 1
fi
