#!/usr/bin/env bash
# The two `litepool tune` runs the README and docs/bench.md show, end to end, into OUT (default
# /tmp/tune-demo): the demo data, `tune` on prod_customer_data (read-only workloads) and on audit
# made a split database (writes at synchronous = full), each proposal pasted into a copy of the
# configuration and verified by `litepool check`, the reports' charts kept as SVG files.
#   tools/tune_demo.sh [OUT]       (about 11 minutes: two 5-minute budgets)
# It never writes to config/: the copies of the configuration live in OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/tune-demo}"
rm -rf "$out"
mkdir -p "$out"
cargo build --release --quiet
bin="$PWD/target/release/litepool"
"$bin" demo-data --env demo >/dev/null 2>&1 || true # fills new or empty files only

# A copy of the configuration with one database's proposal pasted in ($2: what to append).
paste_into() {
  local dir="$out/$1"
  mkdir -p "$dir/config"
  cp config/default.toml config/demo.toml "$dir/config/"
  ln -s "$PWD/data" "$dir/data"
  printf '\n%s\n' "$2" >>"$dir/config/demo.toml"
}

# 1. Read-only workloads on a single pool.
"$bin" tune --env demo --database prod_customer_data --time-budget 5m \
  --report "$out/prod.html" >"$out/prod.txt" 2>"$out/prod.err"
profile=$(sed -n '/^\[profiles.tuned\]/,/^$/p' "$out/prod.txt")
paste_into prod-config "$profile
[databases.prod_customer_data]
profile = \"tuned\""
(cd "$out/prod-config" && "$bin" check --env demo >"$out/prod-check.txt" 2>&1)

# 2. Writes on a split database: audit with two readers (a variable adds the readers' table).
LITEPOOL__DATABASES__AUDIT__READERS__MAX_SIZE=2 \
  "$bin" tune --env demo --database audit --time-budget 5m \
  --report "$out/audit.html" >"$out/audit.txt" 2>"$out/audit.err"
profile=$(sed -n '/^\[profiles.tuned\]/,/^$/p' "$out/audit.txt")
# The commented keys, uncommented into the database's own tables.
checkpoint=$(sed -n 's/^# checkpoint = /checkpoint = /p' "$out/audit.txt")
readers=$(sed -n '/readers\] table:/{n;s/^# //p}' "$out/audit.txt")
paste_into audit-config "$profile
[databases.audit]
profile = \"tuned\"
$checkpoint

[databases.audit.readers]
${readers:-max_size = 2}"
(cd "$out/audit-config" && "$bin" check --env demo >"$out/audit-check.txt" 2>&1)

# The charts, each a standalone SVG file (the page's text style inlined).
python3 - "$out" <<'EOF'
import re, sys
out = sys.argv[1]
style = '<style>text { font: 12px sans-serif; fill: #222; } .title { font-weight: bold; font-size: 14px; } .group { font-weight: bold; }</style>'
for run in ("prod", "audit"):
    page = open(f"{out}/{run}.html").read()
    for svg in re.findall(r'<svg id="[^"]*".*?</svg>', page, re.S):
        name = re.search(r'id="([^"]*)"', svg).group(1).replace("curve-", "")
        if "xmlns=" not in svg.split(">")[0]:
            svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
        svg = re.sub(r"(<svg[^>]*>)", lambda m: m.group(1) + style, svg, count=1)
        open(f"{out}/{run}-{name}.svg", "w").write(svg + "\n")
EOF
ls "$out"
