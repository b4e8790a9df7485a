#!/usr/bin/env bash
# Growth with history: does ordersd cost more with millions of orders behind
# it than on day one? For each history size (orders; default 10000 100000
# 1000000), on a fresh database of its own:
#
#   1. builds the history with "ordersload history" (half of the orders on one
#      hot product, half over 1,000 others; ~80% paid, the rest canceled after
#      a failed payment; read models built, process manager at the head);
#   2. cold start: starts ordersd (all roles) and times it until /readyz
#      answers 200; RSS then;
#   3. the first POST /orders on the hot product: its latency, and RSS after;
#   4. crash: a closed-loop load of POST /orders (ordersload place: hot product
#      and others) for BENCH_LOAD_SECONDS, kill -9 of ordersd mid-load, a
#      restart, and the time from the restart until no order is left
#      undecided (status created) and no closed order holds stock, read from
#      the event store itself by "ordersload settle";
#   5. the sizes of the events table and, if there is one, of snapshots
#      (pg_total_relation_size).
#
# Prints one markdown row per size on stdout (for docs/benchmarks.md), then the
# ratios largest/smallest history. Details and progress go to stderr.
#
# Usage (from anywhere in the checkout):
#   internal/tools/ordersload/history_bench.sh [SIZE...]      # or: make bench-history
# Environment (defaults in brackets):
#   BENCH_PORT [18731]            ordersd's port, on 127.0.0.1
#   BENCH_PG_URL [postgres://postgres@127.0.0.1:5432]  the server, no database
#   BENCH_REDIS_URL [redis://127.0.0.1:6379/0]
#   BENCH_LOAD_SECONDS [5]        load before the kill -9
#   BENCH_CONNS [32]              clients of the load
#   BENCH_READY_TIMEOUT [900]     seconds to wait for /readyz
#   BENCH_SETTLE_TIMEOUT [15m]    to wait for the crash's placements to finish
#   BENCH_HISTORY_TIMEOUT [3600]  seconds to build one history
#   BENCH_KEEP_DB [0]             1 keeps the databases (ordersbench_SIZE_PID)
#   HISTORY_ARGS []               more flags for ordersload history
# Needs Go, psql, curl and awk; PostgreSQL and Redis on 127.0.0.1.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(10000 100000 1000000)
for s in "${sizes[@]}"; do
  [[ $s =~ ^[1-9][0-9]*$ ]] || { echo "history_bench: size '$s' is not a positive number of orders" >&2; exit 2; }
done
port=${BENCH_PORT:-18731}
pg=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}
redis=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}
load_secs=${BENCH_LOAD_SECONDS:-5}
conns=${BENCH_CONNS:-32}
ready_timeout=${BENCH_READY_TIMEOUT:-900}
settle_timeout=${BENCH_SETTLE_TIMEOUT:-15m}
history_timeout=${BENCH_HISTORY_TIMEOUT:-3600}
keep=${BENCH_KEEP_DB:-0}
base=http://127.0.0.1:$port

work=$(mktemp -d -t ordersbench.XXXXXX)
pid= loadpid= dbs=()

log() { echo "history_bench: $*" >&2; }
die() { log "$*"; exit 1; }
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }          # start_ns → ms
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }  # ms → "1.23"
psql_in() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -At -v ON_ERROR_STOP=1 "$pg/$1?sslmode=disable" -c "$2"; }
rss_mib() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

cleanup() {
  [ -n "$loadpid" ] && kill "$loadpid" 2>/dev/null && wait "$loadpid" 2>/dev/null
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  if [ "$keep" != 1 ]; then
    for db in "${dbs[@]}"; do psql_in postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  else
    for db in "${dbs[@]}"; do log "kept database $db"; done
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_ordersd URL LOG: ordersd with every role, on 127.0.0.1 only, with a
# clean environment (nothing inherited from the caller's shell).
start_ordersd() {
  env -i PATH="$PATH" HOME="${HOME:-/tmp}" ORDERS_ROLES=all HTTP_ADDR=127.0.0.1:$port DATABASE_URL="$1" \
    REDIS_URL="$redis" RATE_LIMIT_ORDERS_PER_MINUTE=1000000000 LOG_LEVEL=WARN \
    FAKE_PAYMENT_ENABLED=true FAKE_PAYMENT_DELAY=50ms \
    "$work/ordersd" >>"$2" 2>&1 &
  pid=$!
}
# wait_ready LOG: until /readyz answers 200, ordersd dies, or the deadline.
wait_ready() {
  local deadline=$(( $(date +%s) + ready_timeout ))
  while [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz")" != 200 ]; do
    kill -0 "$pid" 2>/dev/null || { tail -5 "$1" >&2; die "ordersd died before it was ready"; }
    [ "$(date +%s)" -lt "$deadline" ] || die "ordersd not ready after ${ready_timeout}s"
    sleep 0.02
  done
}
# stop_ordersd: SIGTERM, then kill -9 if it has not exited in 30 s.
stop_ordersd() {
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
}

curl -s -o /dev/null --max-time 2 "$base/healthz" && die "something already answers on $base; set BENCH_PORT"
log "building ordersd and ordersload into $work"
(cd "$root" && go build -o "$work/ordersd" ./cmd/ordersd) || die "ordersd does not build"
(cd "$here" && go build -o "$work/ordersload" .) || die "ordersload does not build"

echo "| orders | events | history built in | cold start to /readyz | RSS after start | first POST /orders, hot product | RSS after it | kill -9 mid-load: all placements decided, stock conserved (undecided at restart) | events table | snapshots table |"
echo "|---|---|---|---|---|---|---|---|---|---|"
results=()
for size in "${sizes[@]}"; do
  db=ordersbench_${size}_$$
  url="$pg/$db?sslmode=disable"
  dbs+=("$db")
  slog="$work/ordersd_$size.log"
  psql_in postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || die "cannot reach PostgreSQL"

  log "$size orders: building the history"
  t0=$(now_ns)
  timeout "$history_timeout" "$work/ordersload" history -orders "$size" -database-url "$url" ${HISTORY_ARGS:-} \
    >"$work/history_$size.out" 2>"$work/history_$size.err" || { tail -5 "$work/history_$size.err" >&2; die "history of $size orders failed"; }
  build_ms=$(ms_since "$t0")
  sed 's/^/    /' "$work/history_$size.out" >&2
  hot=$(awk '/^hot product:/ { print $3 }' "$work/history_$size.out")
  events=$(awk '/^events:/ { print $2 }' "$work/history_$size.out")
  [ -n "$hot" ] && [ -n "$events" ] || die "history of $size orders: no hot product or event count in its summary"

  log "$size orders: cold start"
  t0=$(now_ns)
  start_ordersd "$url" "$slog"
  wait_ready "$slog"
  start_ms=$(ms_since "$t0")
  rss_start=$(rss_mib "$pid")

  answer=$(curl -s -o "$work/first.json" -w '%{http_code} %{time_total}' --max-time 120 -X POST "$base/orders" \
    -H 'Content-Type: application/json' -H "Idempotency-Key: bench-first-$size-$$" \
    -d '{"user_email":"bench-first-'"$size"'@example.com","items":[{"product_id":"'"$hot"'","quantity":1}]}')
  [ "${answer%% *}" = 201 ] || { cat "$work/first.json" >&2; die "first order on the hot product: HTTP ${answer%% *}"; }
  first_ms=$(awk -v s="${answer#* }" 'BEGIN { printf "%.0f", s * 1000 }')
  rss_first=$(rss_mib "$pid")
  log "$size orders: ready after $(secs "$start_ms") s, RSS $rss_start MiB; first hot order ${first_ms} ms, RSS $rss_first MiB"

  log "$size orders: ${load_secs}s of closed-loop load ($conns clients), kill -9, restart"
  marker=$("$work/ordersload" head -database-url "$url") || die "no head position"
  "$work/ordersload" place -url "$base" -hot "$hot" -conns "$conns" -duration 300s >"$work/place_$size.out" 2>&1 &
  loadpid=$!
  sleep "$load_secs"
  kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
  kill -TERM "$loadpid"; wait "$loadpid" 2>/dev/null; loadpid=
  sed 's/^/    /' "$work/place_$size.out" >&2
  t_restart=$(now_ns)
  start_ordersd "$url" "$slog"
  "$work/ordersload" settle -database-url "$url" -after "$marker" -since "$t_restart" -timeout "$settle_timeout" \
    >"$work/settle_$size.out" 2>&1 || { cat "$work/settle_$size.out" >&2; tail -5 "$slog" >&2; die "the interrupted placements did not settle"; }
  sed 's/^/    /' "$work/settle_$size.out" >&2
  settle_s=$(awk '/^settled after/ { printf "%.2f", $3 }' "$work/settle_$size.out")
  undecided=$(awk '/first look/ { for (i = 1; i <= NF; i++) if ($i == "undecided,") print $(i-1) }' "$work/settle_$size.out")
  stop_ordersd

  events_mib=$(psql_in "$db" "SELECT round(pg_total_relation_size('events') / 1048576.0)") || die "no events table size"
  snapshots=$(psql_in "$db" "SELECT coalesce(round(pg_total_relation_size(to_regclass('snapshots')) / 1048576.0)::text || ' MiB', 'none')")
  printf '| %s | %s | %s s | %s s | %s MiB | %s ms | %s MiB | %s s (%s) | %s MiB | %s |\n' \
    "$size" "$events" "$(secs "$build_ms")" "$(secs "$start_ms")" "$rss_start" "$first_ms" "$rss_first" \
    "$settle_s" "${undecided:-?}" "$events_mib" "$snapshots"
  results+=("$size $start_ms $rss_start $first_ms $rss_first $settle_s")

  if [ "$keep" != 1 ]; then
    psql_in postgres "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
  fi
done

if [ ${#results[@]} -ge 2 ]; then
  printf '%s\n' "${results[0]}" "${results[${#results[@]}-1]}" | awk '
    NR == 1 { n1 = $1; s1 = $2; r1 = $3; f1 = $4; q1 = $5; c1 = $6 }
    NR == 2 { printf "\nratio %s/%s orders: cold start ×%.2f, RSS after start ×%.2f, first hot order ×%.2f (RSS after it ×%.2f), crash recovery ×%.2f\n",
                     $1, n1, $2 / s1, $3 / r1, $4 / f1, $5 / q1, (c1 > 0 ? $6 / c1 : 0) }'
fi
