#!/usr/bin/env bash
# Runs the fakes (pwbi-devstack) and the agent against them, in the
# foreground. Ctrl-C stops both. Usage: scripts/demo.sh BIN_DIR DEMO_DIR
set -euo pipefail
bin=${1:-bin}
dir=${2:-.demo}
mkdir -p "$dir"
cat > "$dir/config.toml" <<TOML
# Demo configuration: the agent against local fakes (see pwbi-devstack).
version = 1

[agent]
id = "demo-cafe-pc"
data_dir = "data"
log_level = "info"

[moka]
enabled = true
api = "apikey"
base_url = "http://127.0.0.1:18481"
business_id = "biz_1"
api_key = "test-api-key"
timezone = "Asia/Jakarta"
poll_interval = "30s"
initial_backfill_days = 14
requests_per_minute = 120

[upstream]
url = "http://127.0.0.1:18480"
token = "demo-upstream-token"
batch_size = 200
flush_interval = "2s"

[local_api]
listen = "127.0.0.1:18687"
TOML

"$bin/pwbi-devstack" &
stack=$!
trap 'kill $stack 2>/dev/null || true; wait $stack 2>/dev/null || true' EXIT INT TERM
sleep 0.5
echo
echo "Demo running. Status:  curl -s http://127.0.0.1:18687/v1/status"
echo "                Sync:  $bin/pwbi-agent sync --config $dir/config.toml"
echo "Press Ctrl-C to stop."
echo
"$bin/pwbi-agent" run --config "$dir/config.toml"
