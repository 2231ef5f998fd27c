#!/usr/bin/env bash
# Runs every fuzz target in turn for MINUTES each (default 1), on seeds from seed.sh and the
# corpus each run grows (fuzz/corpus/TARGET, kept between runs). An input that crashes, takes
# more than 1 s, or allocates more than 256 MiB at once is a finding: libFuzzer stops the
# target there and writes the input to fuzz/artifacts/TARGET/. Prints one line per target.
# Usage: fuzz/run.sh [MINUTES] [TARGET...]   (MINUTES may be a fraction; cargo +nightly, cargo-fuzz)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
minutes=${1:-1}
shift || true
seconds=$(awk -v m="$minutes" 'BEGIN { print int(m * 60) }')
[ "$seconds" -gt 0 ] || { echo "usage: fuzz/run.sh MINUTES [TARGET...] (MINUTES > 0, may be a fraction)" >&2; exit 2; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
[ -d seeds ] || ./seed.sh >/dev/null
cargo +nightly fuzz build -O >/dev/null 2>&1 || cargo +nightly fuzz build -O
mkdir -p results
printf '%-13s %12s %9s %7s %s\n' target executions "exec/s" cov finding
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" "seeds/$t"
  log=results/$t.log
  cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time=$seconds -timeout=1 -malloc_limit_mb=256 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1
  status=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  speed=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  finding=none
  if [ $status -ne 0 ]; then
    finding=$(grep -m1 -o 'ERROR: libFuzzer: [a-z-]*\|panicked at [^ ]*\|out-of-memory ([^)]*)' "$log" || echo "exit $status")
    finding="$finding — $(ls -t "artifacts/$t" 2>/dev/null | head -1)"
  fi
  printf '%-13s %12s %9s %7s %s\n' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "$finding"
done
