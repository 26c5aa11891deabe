#!/usr/bin/env bash
# Prints what a browser downloads to hydrate each page of the release build, compressed with
# brotli as a server or CDN would serve it, each file on its own as it travels: the wasm module
# and its JS, and, for a build split into lazy routes (`cargo leptos build --split`), the split
# loader, the page's own module and every chunk it depends on (__wasm_split_manifest.json).
# Without a split every page needs the whole module. Fails when the buyer's payment page or the
# sign-in page needs more than the target.
set -euo pipefail
cd "$(dirname "$0")/../target/site/pkg"
TARGET_KB=250

python3 - "$TARGET_KB" <<'EOF'
import glob, json, os, subprocess, sys

target = int(sys.argv[1]) * 1000
cache = {}

def brotli(path):
    if path not in cache:
        cache[path] = len(subprocess.run(["brotli", "-c", "-q", "11", path], check=True, capture_output=True).stdout)
    return cache[path]

# A split build's JS imports the split loader; a manifest beside a module that does not is left
# from an earlier split build. (Modification times cannot tell: wasm-opt rewrites the module
# after the manifest is written.)
split = os.path.exists("__wasm_split_manifest.json") and "__wasm_split" in open("remit.js").read()
manifest = json.load(open("__wasm_split_manifest.json")) if split else {}
shared = ["remit.wasm", "remit.js"] + (glob.glob("__wasm_split.*.js") if split else [])
base = sum(brotli(f) for f in shared)
print(f"{'file':<34} {'raw':>9} {'brotli':>9}")
for f in shared + ["remit.css"]:
    print(f"{f[:34]:<34} {len(open(f, 'rb').read()):>9} {brotli(f):>9}")
print(f"\n{'page (lazy route)':<34} {'chunks':>6} {'own':>9} {'total':>9}   brotli bytes: main + JS + page + chunks")
failed = []
for split in sorted(manifest):
    name = split.lstrip("_").rsplit("_route_view_", 1)[0]
    own = brotli(glob.glob(f"split_{split}.wasm")[0])
    chunks = sum(brotli(f"{c}.wasm") for c in manifest[split])
    total = base + own + chunks
    checked = name in ("pay", "sign_in")
    mark = ("  over the target" if total > target else "  within the target") if checked else ""
    print(f"{name:<34} {len(manifest[split]):>6} {own + chunks:>9} {total:>9}{mark}")
    if checked and total > target:
        failed.append(f"{name}: {total} bytes")
if not manifest:
    print(f"{'every page (one module)':<34} {0:>6} {0:>9} {base:>9}")
    if base > target:
        failed.append(f"pay and sign_in: {base} bytes")
if failed:
    sys.exit(f"\nabove {target} bytes brotli: " + ", ".join(failed))
EOF
