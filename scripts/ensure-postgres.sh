#!/usr/bin/env bash
# Prints the PostgreSQL server URL (without a database) Remit should use, starting one if needed:
# DATABASE_URL's server when set; else the server on 127.0.0.1:5432; else a private cluster under
# target/postgres, made with the machine's PostgreSQL binaries (installed with apt if absent).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${DATABASE_URL:-}" ]; then
  echo "${DATABASE_URL%/*}"
  exit 0
fi
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  echo "postgres://postgres@127.0.0.1:5432"
  exit 0
fi

bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
if [ -z "$bindir" ]; then
  echo "==> apt: installing PostgreSQL" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >&2
  bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
fi

data="$PWD/target/postgres"
# PostgreSQL refuses to run as root; the cluster belongs to the postgres user then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ ! -f "$data/PG_VERSION" ]; then
  echo "==> initdb: creating a private cluster in $data" >&2
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres: "$data"
  as_owner "$bindir/initdb" -D "$data" -U postgres --auth=trust >&2
fi
as_owner "$bindir/pg_ctl" -D "$data" -l "$data/server.log" -o "-h 127.0.0.1 -p 5432 -k $data" -w start >&2
echo "postgres://postgres@127.0.0.1:5432"
