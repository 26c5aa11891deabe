"""Renders an HTML receipt with WeasyPrint N times and prints the median time as JSON.

Usage: bench_weasyprint.py RECEIPT.html RUNS OUT.pdf (the benchmark in domain/benches calls it).
"""

import json
import statistics
import sys
import time

import weasyprint


def main() -> None:
    path, runs, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(path, encoding="utf-8") as f:
        html = f.read()
    document = weasyprint.HTML(string=html, base_url=path).write_pdf()  # warm-up: font loading, caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        document = weasyprint.HTML(string=html, base_url=path).write_pdf()
        times.append((time.perf_counter() - started) * 1000)
    with open(out, "wb") as f:
        f.write(document)
    print(json.dumps({"median_ms": statistics.median(times), "bytes": len(document), "version": weasyprint.__version__}))


if __name__ == "__main__":
    main()
