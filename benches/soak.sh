#!/usr/bin/env bash
# Memory soak: offramp on the shipped example config (config/offramp.toml, with its
# built-in demo origin), idle RSS first, then 50-connection wrk load in slices
# alternating the proxied site (blog.localhost) and the offline one (cloud.localhost),
# RSS after every slice. Fails when idle RSS > 16 MiB, any RSS under load > 32 MiB,
# the last slice's RSS exceeds the warmed-up one's (after the first two slices, once
# both the proxied and the offline path have run under load) by more than 1 MiB
# (growth), or wrk reports socket errors or non-2xx/3xx answers.
#
#   cargo build --release && benches/soak.sh          # 10 minutes (20 x 30 s)
#   SOAK_SECONDS=120 benches/soak.sh                  # a shorter run
#
# Env: SOAK_SECONDS (600), SLICE (30), BIN (target/release/offramp), PORT (18380; the
# demo origin gets PORT+1). Needs wrk (Debian package wrk).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$ROOT/target/release/offramp}
SOAK_SECONDS=${SOAK_SECONDS:-600}
SLICE=${SLICE:-30}
PORT=${PORT:-18380}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 2; }
[ -x "$BIN" ] || { echo "$BIN not found: cargo build --release" >&2; exit 2; }

DIR=$(mktemp -d)
mkdir -p "$DIR/config"
sed -e "s/127.0.0.1:8080/127.0.0.1:$PORT/" -e "s/127.0.0.1:8081/127.0.0.1:$((PORT + 1))/" \
  "$ROOT/config/offramp.toml" >"$DIR/config/offramp.toml"
RUST_LOG=${RUST_LOG:-warn} "$BIN" serve -c "$DIR/config/offramp.toml" >"$DIR/log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$PID/status"; }
for _ in $(seq 100); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/" -H 'Host: blog.localhost' && break
  sleep 0.1
done
sleep 1
IDLE=$(rss_kib)
echo "idle RSS: $((IDLE / 1024)).$(((IDLE % 1024) * 10 / 1024)) MiB (limit 16)"

fail=0
[ "$IDLE" -le $((16 * 1024)) ] || { echo "FAIL: idle RSS over 16 MiB"; fail=1; }
slices=$(((SOAK_SECONDS + SLICE - 1) / SLICE))
first=0 warm=0 max=0 last=0 errors=0
for i in $(seq "$slices"); do
  host=$([ $((i % 2)) -eq 1 ] && echo blog.localhost || echo cloud.localhost)
  out=$(wrk -t1 -c50 -d"${SLICE}s" -H "Host: $host" "http://127.0.0.1:$PORT/some/path?q=1")
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  sock=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1+\2+\3+\4/p' <<<"$out")
  bad=$(sed -n 's/.*Non-2xx or 3xx responses: \([0-9]*\).*/\1/p' <<<"$out")
  e=$(( ${sock:-0} + ${bad:-0} ))
  errors=$((errors + e))
  last=$(rss_kib)
  [ "$first" -eq 0 ] && first=$last
  [ "$i" -eq 2 ] && warm=$last
  [ "$last" -gt "$max" ] && max=$last
  printf 'slice %2d/%d %-16s %9s rps  RSS %6d KiB  errors %d\n' "$i" "$slices" "$host" "$rps" "$last" "$e"
done
[ "$warm" -eq 0 ] && warm=$first
echo "RSS under load: first slice $first KiB, warmed up (slice 2) $warm KiB, last $last KiB, max $max KiB (limit 32 MiB); errors $errors"
[ "$max" -le $((32 * 1024)) ] || { echo "FAIL: RSS under load over 32 MiB"; fail=1; }
[ "$last" -le $((warm + 1024)) ] || { echo "FAIL: RSS grew by more than 1 MiB after warm-up"; fail=1; }
[ "$errors" -eq 0 ] || { echo "FAIL: $errors socket errors or bad answers"; fail=1; }
[ "$fail" -eq 0 ] && echo "soak: ok"
exit "$fail"
