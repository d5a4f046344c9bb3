#!/usr/bin/env bash
# Regenerates the screenshots of the built-in status page shown in the README:
# runs offramp on a copy of the example config (free ports), opens an incident with two
# updates, schedules a window, takes `cloud` offline with a reason and an expected end,
# and has headless Chromium photograph the overview (light, dark, phone), the incident's
# page and the maintenance page. The database is seeded first with 90 days of uptime
# (a few bad days) for the uptime bars.
#
#   docs/screenshots.sh [path/to/offramp]     (default: target/debug/offramp)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/offramp}
chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser)}
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); demo=$(free_port)
sed -e "s/127.0.0.1:8080/127.0.0.1:$port/" -e "s/127.0.0.1:8081/127.0.0.1:$demo/" \
    -e "s#\.\./run/#$work/#" config/offramp.toml > "$work/offramp.toml"
"$bin" serve -c "$work/offramp.toml" 2> "$work/log" & pid=$!
for _ in $(seq 100); do grep -q ready "$work/log" && break; sleep 0.1; done
# The schema is offramp's (it created the database); the rows are made up.
kill -TERM "$pid"; wait "$pid" || true
python3 - "$work/offramp.db" <<'PY'
import datetime, random, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
random.seed(7)
today = datetime.datetime.now(datetime.timezone.utc).date()
for site, first in (("blog", 89), ("cloud", 60)):
    for d in range(first, 0, -1):
        day = (today - datetime.timedelta(days=d)).isoformat()
        down = 0
        if random.random() < 0.08:
            down = random.choice((40, 300, 1800, 7200)) * 1000
        db.execute("INSERT INTO uptime (site, day, up_ms, down_ms) VALUES (?, ?, ?, ?)",
                   (site, day, 86_400_000 - down, down))
db.commit()
PY
: > "$work/log"
"$bin" serve -c "$work/offramp.toml" 2> "$work/log" & pid=$!
for _ in $(seq 100); do grep -q ready "$work/log" && break; sleep 0.1; done
"$bin" -c "$work/offramp.toml" offline blog --reason "Kernel update" --until 20m > /dev/null
"$bin" -c "$work/offramp.toml" online blog > /dev/null
"$bin" -c "$work/offramp.toml" offline cloud --reason "Replacing a disk in the NAS" --until 2h > /dev/null
id=$("$bin" -c "$work/offramp.toml" incident open "Mail delivery delayed" --impact minor \
    --component mail=degraded_performance \
    --message "Outgoing mail is queued and goes out late. We are looking into it.")
sleep 1
"$bin" -c "$work/offramp.toml" incident update "$id" --status identified \
    --message "The upstream relay refuses our connections. Switching to the backup relay." > /dev/null
"$bin" -c "$work/offramp.toml" maintenance schedule "Router firmware update" --site blog \
    --start +20h --end +30m --message "The blog will be away for about half an hour." > /dev/null

shot() { # url file width height [extra flags]
    "$chromium" --headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --hide-scrollbars --host-resolver-rules="MAP * 127.0.0.1" --user-data-dir="$work/profile" \
        --virtual-time-budget=2000 --window-size="$3,$4" "${@:5}" --screenshot="$2" "$1" 2>/dev/null
}
from="http%3A%2F%2Fcloud.localhost%3A$port%2Fshare%2Fphotos%3Falbum%3D2026"
shot "http://status.localhost:$port/" docs/status-overview.png 900 1500
shot "http://status.localhost:$port/" docs/status-overview-phone.png 390 1700
shot "http://status.localhost:$port/incidents/$id" docs/status-incident.png 900 640
shot "http://status.localhost:$port/maintenance/cloud?from=$from" docs/status-maintenance.png 420 700
shot "http://status.localhost:$port/" docs/status-overview-dark.png 900 1500 --force-dark-mode \
    --blink-settings=preferredColorScheme=0
echo "written: docs/status-overview.png docs/status-overview-phone.png docs/status-incident.png docs/status-maintenance.png docs/status-overview-dark.png"
