#!/usr/bin/env bash
# Instructions per checkout (and per checkout + point read), counted by callgrind: litepool's
# NamedPool::get with statistics on (and off: litepool-off), against a bare r2d2_sqlite pool with no event handler and the
# same test_on_check_out(false). Repeatable on a noisy machine, unlike wall-clock time.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example overhead >/dev/null 2>&1
bin=target/release/examples/overhead
count() { # variant iterations -> total instructions
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
lo=20000; hi=60000
for pair in "bare litepool" "bare litepool-off" "bare-read litepool-read"; do
  set -- $pair
  a=$(( ($(count "$1" $hi) - $(count "$1" $lo)) / (hi - lo) ))
  b=$(( ($(count "$2" $hi) - $(count "$2" $lo)) / (hi - lo) ))
  awk -v a="$a" -v b="$b" -v na="$1" -v nb="$2" \
    'BEGIN { printf "%-14s %6d instructions/op\n%-14s %6d instructions/op  ratio %.3f\n", na, a, nb, b, b / a }'
done
