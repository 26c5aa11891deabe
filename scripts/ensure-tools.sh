#!/usr/bin/env bash
# Installs whatever Remit's build and tests need and this machine lacks. Safe to run again:
# each step checks first. Pinned versions: cargo-leptos 0.3.10, sqlx-cli 0.9.0, and the
# wasm-bindgen CLI matching the wasm-bindgen in Cargo.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    say "apt: installing ${missing[*]}"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Chromium for the end-to-end tests, wasm-opt for release builds, brotli for `make size`, wrk
# and Pango (for WeasyPrint) for `make bench`, poppler-utils and qpdf for the receipt tests
# (pdftotext, pdffonts; qpdf --check reads the file's structure strictly), and the DejaVu fonts
# receipts are set in.
apt_install chromium binaryen brotli wrk libpango-1.0-0 libpangoft2-1.0-0 poppler-utils qpdf fonts-dejavu-core

rustup target list --installed | grep -qx wasm32-unknown-unknown || { say "rustup: adding wasm32"; rustup target add wasm32-unknown-unknown; }

if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos 0.3.10" ]; then
  say "cargo: installing cargo-leptos 0.3.10 (about 20 minutes on 2 cores)"
  cargo install cargo-leptos@0.3.10 --locked
fi

wbg="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)"
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
  say "cargo: installing wasm-bindgen-cli $wbg (about 8 minutes)"
  # Without --locked: its own lock file pins a crate the registry no longer has.
  cargo install wasm-bindgen-cli --version "$wbg"
fi

if [ "$(sqlx --version 2>/dev/null)" != "sqlx-cli 0.9.0" ]; then
  say "cargo: installing sqlx-cli 0.9.0"
  cargo install sqlx-cli --version 0.9.0 --locked --no-default-features --features postgres,rustls
fi

if [ ! -x end2end/node_modules/.bin/playwright ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
  say "npm: installing Playwright (no browser download; Debian's Chromium is used)"
  (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

venv=target/tools/venv
if ! "$venv/bin/python" -c 'import aiosmtpd, stripe, standardwebhooks' 2>/dev/null || [ scripts/test-requirements.txt -nt "$venv/.installed" ]; then
  say "pip: installing aiosmtpd (the SMTP server the mail tests talk to), stripe-python (its typed models judge the sandbox) and standardwebhooks (the official verifier of Remit's webhooks)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/test-requirements.txt
  touch "$venv/.installed"
fi
