#!/usr/bin/env bash
# How long a statistics study takes in a real federation on this machine:
# a coordinator and SITES client daemons (separate processes, mutual TLS on
# loopback), each holding ROWS rows of COLUMNS numeric columns (random data
# made here with numpy). The study asks, for every column, count, missing,
# mean, variance, a histogram of BINS bins and three quantiles, grouped by a
# two-category outcome. Prints the seconds from `study submit` to the
# released statistics, and the coordinator's own count from its log.
#
#   bench/statistics_study.sh [build/apps/samverka]   (env: SITES, ROWS, COLUMNS, BINS)
set -euo pipefail
samverka=$(realpath "${1:-build/apps/samverka}")
sites=${SITES:-3}
rows=${ROWS:-10000}
columns=${COLUMNS:-50}
bins=${BINS:-100}
run=$(mktemp -d /tmp/samverka-statistics-bench.XXXXXX)
cd "$run"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$run"
}
trap cleanup EXIT

"$samverka" pki init --dir pki --federation bench >/dev/null
"$samverka" pki issue --dir pki --name coordinator --role coordinator --san 127.0.0.1 >/dev/null
"$samverka" pki issue --dir pki --name operator --role operator >/dev/null
for i in $(seq "$sites"); do "$samverka" pki issue --dir pki --name "site-$i" >/dev/null; done

/usr/bin/python3 - "$sites" "$rows" "$columns" <<'PY'
import sys
import numpy as np
sites, rows, columns = (int(a) for a in sys.argv[1:])
for i in range(1, sites + 1):
    rng = np.random.default_rng(i)
    x = rng.normal(50, 15, size=(rows, columns)).round(3)
    outcome = rng.integers(0, 2, size=rows)
    header = ",".join([f"c{j}" for j in range(columns)] + ["outcome"])
    np.savetxt(f"site-{i}.csv", np.column_stack([x, outcome]), delimiter=",",
               header=header, comments="", fmt=["%.3f"] * columns + ["%d"])
PY

cat > coordinator.toml <<TOML
federation_id = "bench"
listen = "127.0.0.1:0"
state_dir = "state"
heartbeat_seconds = 2
[tls]
ca_certificate = "pki/ca/ca.crt"
certificate = "pki/sites/coordinator/coordinator.crt"
private_key = "pki/sites/coordinator/coordinator.key"
crl = "pki/ca/crl.pem"
TOML
mkdir -p state
"$samverka" coordinator --config coordinator.toml > coordinator.log 2>&1 &
pids+=($!)
for _ in $(seq 300); do [ -s state/coordinator.port ] && break; sleep 0.1; done
[ -s state/coordinator.port ] || { cat coordinator.log; echo "the coordinator did not start"; exit 1; }
port=$(cat state/coordinator.port)
for i in $(seq "$sites"); do
  cat > "site-$i.toml" <<TOML
coordinator = "127.0.0.1:$port"
poll_seconds = 5
state_dir = "state-$i"
[datasets]
table = "csv:$run/site-$i.csv:outcome"
[tls]
ca_certificate = "pki/ca/ca.crt"
certificate = "pki/sites/site-$i/site-$i.crt"
private_key = "pki/sites/site-$i/site-$i.key"
TOML
  "$samverka" client --config "site-$i.toml" > "site-$i.log" 2>&1 &
  pids+=($!)
done
for _ in $(seq 600); do
  [ "$(grep -c 'joined (data sets' coordinator.log || true)" -ge "$sites" ] && break
  sleep 0.1
done
[ "$(grep -c 'joined (data sets' coordinator.log || true)" -ge "$sites" ] ||
  { tail -n 3 site-*.log; echo "the sites did not join"; exit 1; }

{
  printf 'name = "bench"\nkind = "statistics"\ndataset = "table"\n'
  printf '[statistics]\nmin_count = 5\ngroup_by = "outcome"\n'
  for j in $(seq 0 $((columns - 1))); do
    printf '[statistics.columns.c%d]\nrange = [0, 100]\nbins = %d\nquantiles = [0.25, 0.5, 0.75]\n' "$j" "$bins"
  done
  printf '[statistics.columns.outcome]\ncategories = ["0", "1"]\n'
} > study.toml

start=$(date +%s.%N)
out=$("$samverka" study submit study.toml --coordinator "127.0.0.1:$port" --ca pki/ca/ca.crt \
        --cert pki/sites/operator/operator.crt --key pki/sites/operator/operator.key)
study=$(sed -E 's/^study ([0-9a-f]+) .*/\1/' <<< "$out")
until grep -q "study $study released the statistics" coordinator.log; do
  grep -q "secure sum failed" coordinator.log && { cat coordinator.log; exit 1; }
  sleep 0.05
done
end=$(date +%s.%N)
grep "study $study released" coordinator.log | sed -E 's/.*(study [0-9a-f]+ released[^;]*).*/\1/'
grep -h "left this site only masked" site-1.log | sed -E 's/.*: (one vector of [0-9]+ integers \([0-9]+ bytes masked).*/site-1 sent \1)/'
printf 'sites=%s rows_per_site=%s columns=%s bins=%s: submit to released %.2f s\n' \
  "$sites" "$rows" "$columns" "$bins" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')"
