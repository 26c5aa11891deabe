#!/usr/bin/env bash
# Prints what a browser downloads to run each page of the release build, compressed with brotli
# as a server or CDN would serve it, each file on its own as it travels.
# - A page with the app needs the wasm module and its JS and, for a build split into lazy routes
#   (`cargo leptos build --split`), the split loader, the page's own module and every chunk it
#   depends on (__wasm_split_manifest.json). Without a split it needs the whole module.
# - A page the server sends without the app (`served_without_app` in app/src/lib.rs: the buyer's
#   pages and sign-in) needs only /plain.js.
# Fails when the buyer's payment page or the sign-in page needs more than the target.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_KB=250

python3 - "$TARGET_KB" <<'PY'
import glob, json, os, re, subprocess, sys

target = int(sys.argv[1]) * 1000
pkg = "target/site/pkg"
cache = {}

def brotli(path):
    if path not in cache:
        cache[path] = len(subprocess.run(["brotli", "-c", "-q", "11", path], check=True, capture_output=True).stdout)
    return cache[path]

# Which paths each lazy route serves, and which paths come without the app, read from the app's
# source so that this report follows the code (an integration test holds the server to the rule).
source = open("app/src/lib.rs").read()
snake = lambda name: re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Route")).lower()
paths = {}
for path, route in re.findall(r'path!\("([^"]*)"\) view=\{Lazy::<(\w+)>', source):
    paths.setdefault(snake(route), []).append(path)
rule = source[source.index("fn served_without_app"):].split("\n}\n", 1)[0]
exact = re.findall(r'path == "([^"]*)"', rule)
prefixes = re.findall(r'path\.starts_with\("([^"]*)"\)', rule)
without_app = lambda path: path in exact or any(path.startswith(p) for p in prefixes)

# A split build's JS imports the split loader; a manifest beside a module that does not is left
# from an earlier split build. (Modification times cannot tell: wasm-opt rewrites the module
# after the manifest is written.)
os.chdir(pkg)
split = os.path.exists("__wasm_split_manifest.json") and "__wasm_split" in open("remit.js").read()
manifest = json.load(open("__wasm_split_manifest.json")) if split else {}
shared = ["remit.wasm", "remit.js"] + (glob.glob("__wasm_split.*.js") if split else [])
plain = "../../../public/plain.js"
base = sum(brotli(f) for f in shared)
print(f"{'file':<34} {'raw':>9} {'brotli':>9}")
for f in shared + ["remit.css", plain]:
    print(f"{os.path.basename(f)[:34]:<34} {len(open(f, 'rb').read()):>9} {brotli(f):>9}")

print(f"\n{'page (lazy route)':<34} {'chunks':>6} {'own':>9} {'in app':>9} {'served':>9}")
print("brotli bytes; in app: main + JS + page + chunks, on a navigation inside the app;")
print("served: on a first visit, the same, or plain.js alone for a page sent without the app")
failed = []
for key in sorted(manifest):
    name = key.lstrip("_").rsplit("_route_view_", 1)[0]
    own = brotli(glob.glob(f"split_{key}.wasm")[0])
    chunks = sum(brotli(f"{c}.wasm") for c in manifest[key])
    in_app = base + own + chunks
    plain_page = bool(paths.get(name)) and all(without_app(p) for p in paths[name])
    served = brotli(plain) if plain_page else in_app
    checked = name in ("pay", "sign_in")
    mark = ("  over the target" if served > target else "  within the target") if checked else ""
    how = "  (without the app)" if plain_page else ""
    print(f"{name:<34} {len(manifest[key]):>6} {own + chunks:>9} {in_app:>9} {served:>9}{how}{mark}")
    if checked and served > target:
        failed.append(f"{name}: {served} bytes")
if not manifest:
    print(f"{'every page (one module)':<34} {0:>6} {0:>9} {base:>9} {base:>9}")
    for name, path in (("pay", "/pay/token"), ("sign_in", "/sign-in")):
        served = brotli(plain) if without_app(path) else base
        print(f"{name:<34} {0:>6} {0:>9} {base:>9} {served:>9}")
        if served > target:
            failed.append(f"{name}: {served} bytes")
if failed:
    sys.exit(f"\nabove {target} bytes brotli: " + ", ".join(failed))
PY
