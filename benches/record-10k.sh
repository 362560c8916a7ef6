#!/usr/bin/env bash
# Times recording N disks (default 10,000) in one transaction into each history store: a
# SQLite file, and a PostgreSQL database on a server this script starts itself (initdb in a
# temporary folder, run as `nobody` when this runs as root, a free local port, default
# durability settings: fsync on), then stops.
#
#   benches/record-10k.sh [N]
#
# Two measurements per store, release build, each the median of REPS runs (default 3):
#   import   `deltascope import` of a plain CSV of N disks: the store's one transaction
#            alone (record_all: the same code a datastore scan records with), into an empty
#            store, then N points a week later (each disk's second point), then the first
#            file again (every point a duplicate of an older one: the back-fill path, one
#            look-up per point)
#   scan     with TREE=1, `scan DIR --record` of a tree of N VM folders, each a hard-linked
#            copy of testdata/demo (three layers), beside the same scan without --record:
#            the difference is what recording costs (the layer cache is filled first, so
#            each scan re-reads only the N top layers); and the store's bytes per point
# Needs the postgresql package (initdb, pg_ctl on PATH or in /usr/lib/postgresql/*/bin).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=${1:-10000}
(cd "$root" && cargo build --release --locked --quiet --bin deltascope)
ds=$root/target/release/deltascope

bin=""
for d in $(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null || echo /nonexistent)")") \
    $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && bin=$d && break
done
[ -n "$bin" ] || { echo "initdb/pg_ctl not found: apt-get install postgresql" >&2; exit 1; }

work=$(mktemp -d /tmp/deltascope-record-XXXXXX)
chmod 755 "$work"
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
    chown nobody:nogroup "$work"
    as_owner=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
stop() {
    "${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap stop EXIT
echo bench >"$work/pw"
chown --reference="$work" "$work/pw"
(cd "$work" && HOME=$work "${as_owner[@]}" "$bin/initdb" -D "$work/data" -U deltascope \
    -A scram-sha-256 --pwfile="$work/pw" -E UTF8 --no-locale >/dev/null)
(cd "$work" && HOME=$work "${as_owner[@]}" "$bin/pg_ctl" -D "$work/data" -l "$work/log" -w \
    -o "-p $port -k $work -c listen_addresses=127.0.0.1" start >/dev/null)
export PGPASSWORD=bench
pg="postgresql://deltascope@127.0.0.1:$port"
psql_create() { "$bin/psql" -q -d "$pg/postgres" -c "CREATE DATABASE $1" >/dev/null; }

csv=$work/points.csv
python3 - "$n" "$csv" <<'EOF'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("timestamp,disk,bytes\n")
    for i in range(n):
        f.write(f"2026-10-05T08:00:00Z,/vmfs/volumes/ds{i % 50}/vdi-{i:05}/vdi-{i:05}-000001.vmdk,{(i + 1) * 4096}\n")
EOF
sed 's/^2026-10-05T08/2026-10-12T08/; s/,\([0-9]*\)$/,\1000/' "$csv" >"$work/week2.csv"
sed -i '1s/.*/timestamp,disk,bytes/' "$work/week2.csv"

secs() { local t0 t1; t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
row() { printf '%-11s %-34s %8.2f   (%s)\n' "$1" "$2" "$(median $3)" "$(printf '%.2f ' $3)"; }
reps=${REPS:-3}

echo "recording $n disks in one transaction (release build, $(nproc) cores, median of $reps runs)"
printf '%-11s %-34s %8s   %s\n' store step seconds runs
for store in sqlite postgresql; do
    empty="" second="" dup="" hist=""
    for r in $(seq 1 "$reps"); do
        if [ $store = sqlite ]; then
            db=$work/h$r.sqlite
        else
            psql_create bench_import_$r
            db=$pg/bench_import_$r
        fi
        "$ds" db migrate --db "$db" >/dev/null
        empty+=" $(secs "$ds" import "$csv" --db "$db")"
        second+=" $(secs "$ds" import "$work/week2.csv" --db "$db")"
        dup+=" $(secs "$ds" import "$csv" --db "$db")"
        hist+=" $(secs "$ds" history --json --db "$db")"
    done
    row $store "import, empty store" "$empty"
    row $store "import, each disk's 2nd point" "$second"
    row $store "import week 1 again (duplicates)" "$dup"
    row $store "history --json ($((2 * n)) points)" "$hist"
done

if [ "${TREE:-0}" = 1 ]; then
    tree=$work/ds
    for i in $(seq -f '%05g' 1 "$n"); do
        mkdir -p "$tree/vm-$i"
        ln "$root"/testdata/demo/*.vmdk "$tree/vm-$i/"
    done
    export DELTASCOPE_CACHE=$work/cache
    "$ds" scan --since 2026-10-01 "$tree" >/dev/null 2>&1 # fills the layer cache
    psql_create bench_scan
    "$ds" db migrate --db "$pg/bench_scan" >/dev/null
    "$ds" db migrate --db "$work/scan.sqlite" >/dev/null
    plain="" lite="" post=""
    for r in $(seq 1 "$reps"); do
        at=2026-10-0${r}T00:00:00Z
        plain+=" $(secs "$ds" scan --since 2026-10-01 "$tree")"
        lite+=" $(secs "$ds" scan --since 2026-10-01 --record --at $at --db "$work/scan.sqlite" "$tree")"
        post+=" $(secs "$ds" scan --since 2026-10-01 --record --at $at --db "$pg/bench_scan" "$tree")"
    done
    row - "scan DIR (no record)" "$plain"
    row sqlite "scan DIR --record" "$lite"
    row postgresql "scan DIR --record" "$post"
    points=$((reps * n))
    lite_bytes=$(stat -c %s "$work/scan.sqlite")
    pg_bytes=$("$bin/psql" -At -d "$pg/bench_scan" -c "SELECT pg_total_relation_size('scans')")
    echo "store size after $points scan points (3-layer chains): sqlite $((lite_bytes / points)) bytes/point, postgresql $((pg_bytes / points)) bytes/point (table and indexes)"
fi
