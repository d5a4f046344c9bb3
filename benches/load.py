#!/usr/bin/env python3
"""Load test: offramp against a direct-to-upstream baseline, as ratios.

With the shared side-by-side bench present (../shared/bench/run.py, or BENCH_DIR),
this runs it for offramp (and nginx, HAProxy, Caddy, direct) and prints its table:

    cargo build --release && benches/load.py            # full run (~12 min)
    benches/load.py --quick                             # ~2 min, 1 worker

Without it, a self-contained run: offramp's built-in demo origin as the upstream, wrk
with 50 connections against the origin directly and through offramp (online site and
offline site), and the ratio offramp/direct. Needs `wrk` (Debian package `wrk`).

Any extra arguments are passed to run.py.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "offramp")


def shared_bench():
    d = os.environ.get("BENCH_DIR", os.path.join(ROOT, "..", "shared", "bench"))
    run = os.path.join(d, "run.py")
    return run if os.path.exists(run) else None


def wrk(url, host, seconds=5):
    out = subprocess.run(
        ["wrk", "-t1", "-c50", f"-d{seconds}s", "--latency", "-H", f"Host: {host}", url],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(\w+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return rps, (p99.group(1) + p99.group(2)) if p99 else "?", \
        int(non2xx.group(1)) if non2xx else 0, errors.group(1) if errors else "none"


def self_contained():
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk (or run ../shared/bench/setup.sh)")
    d = tempfile.mkdtemp()
    cfg = os.path.join(d, "offramp.toml")
    with open(cfg, "w") as f:
        f.write("""[server]
http = "127.0.0.1:18210"
threads = 1
control = "control.sock"
state = "state.json"
access_log = false
[maintenance]
status_page = "https://status.example.com"
[[site]]
name = "app"
hosts = ["app.bench"]
upstream = "http://127.0.0.1:18211"
[[site]]
name = "down"
hosts = ["down.bench"]
upstream = "http://127.0.0.1:18211"
state = "offline"
[demo]
listen = "127.0.0.1:18211"
""")
    p = subprocess.Popen([BIN, "serve", "-c", cfg], stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        direct = wrk("http://127.0.0.1:18211/", "app.bench")
        proxied = wrk("http://127.0.0.1:18210/", "app.bench")
        redirect = wrk("http://127.0.0.1:18210/", "down.bench")
    finally:
        p.terminate()
        p.wait()
    print(f"{'scenario':<10} {'rps':>10} {'x direct':>9} {'p99':>9}  non-2xx/3xx  socket errors")
    for name, r in (("direct", direct), ("proxy", proxied), ("redirect", redirect)):
        print(f"{name:<10} {r[0]:>10.0f} {r[0] / direct[0]:>9.3f} {r[1]:>9}  {r[2]:>11}  {r[3]}")


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not found: run `cargo build --release` first")
    run = shared_bench()
    if run:
        sys.exit(subprocess.call([sys.executable, run, "--put-bin", BIN] + sys.argv[1:]))
    self_contained()


if __name__ == "__main__":
    main()
