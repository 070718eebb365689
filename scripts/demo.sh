#!/usr/bin/env bash
# Runs the fakes (pwbi-devstack) and the agent against them, in the
# foreground. Ctrl-C stops both.
# Usage: scripts/demo.sh BIN_DIR DEMO_DIR [apikey|oauth] [SINKS]
#   apikey (the default): the integration guide's API key; data flows at once.
#   oauth: the Moka Open API that real accounts have, as a fresh install
#          meets it: the agent waits until someone clicks "Connect Moka" on
#          the dashboard (or runs `pwbi-agent moka connect`) and approves on
#          the (fake) Moka page.
#   SINKS: extra sinks beside the (fake) PWBI upstream, comma separated:
#     nats: a real single-node NATS JetStream server (inside pwbi-devstack,
#           on 127.0.0.1:14222) with the PWBI stream of docs/nats.md; the
#           devstack prints how many messages the stream holds.
#     jurnal: the fake Jurnal (Mekari) API (inside pwbi-devstack, on
#           127.0.0.1:18483); the sales are posted as invoices and the
#           devstack prints the documents and totals Jurnal holds.
set -euo pipefail
bin=${1:-bin}
dir=${2:-.demo}
dialect=${3:-apikey}
sinks=${4:-}
case "$dialect" in
apikey)
	moka_section='api = "apikey"
business_id = "biz_1"
api_key = "test-api-key"'
	;;
oauth)
	# The fake Moka Open API's client (see pwbi-devstack -moka-client-id);
	# business_id stays empty: the connected account's business is used.
	moka_section='api = "oauth"
client_id = "pwbi-agent-test-client"
client_secret = "test-client-secret-0123456789abcdef"'
	;;
*)
	echo "demo: dialect must be apikey or oauth, not $dialect" >&2
	exit 2
	;;
esac
extra_sections=""
stack_flags=()
for sink in ${sinks//,/ }; do
	case "$sink" in
	nats)
		# The devstack creates the stream, as a chain's operators would
		# (docs/nats.md); the agent only publishes to it.
		stack_flags+=(-nats 127.0.0.1:14222 -nats-store "$dir/nats")
		extra_sections+='
[nats]
enabled = true
urls = ["nats://127.0.0.1:14222"]
stream = "PWBI"
create_stream = false
'
		;;
	jurnal)
		# The fake Jurnal (Mekari) API inside pwbi-devstack, with its demo
		# HMAC credentials (not secrets: a demo); the devstack prints the
		# documents Jurnal holds and their totals.
		stack_flags+=(-jurnal 127.0.0.1:18483)
		extra_sections+='
[jurnal]
enabled = true
base_url = "http://127.0.0.1:18483"
client_id = "jurnal-test-client"
client_secret = "jurnal-test-secret-0123456789abcdef"
mode = "invoice"
requests_per_minute = 600
customer_name = "Pelanggan Umum"

[jurnal.deposit_accounts]
default = "Kas"
qris = "Bank BCA"
'
		;;
	*)
		echo "demo: unknown sink $sink (known: nats, jurnal)" >&2
		exit 2
		;;
	esac
done
mkdir -p "$dir"
# The demo tablet's token (not a secret: a demo). The config holds only its
# SHA-256; a real tablet gets its token from `pwbi-agent tablet add NAME`.
tablet_token=demo-tablet-token
cat > "$dir/config.toml" <<TOML
# Demo configuration: the agent against local fakes (see pwbi-devstack).
version = 1

[agent]
id = "demo-cafe-pc"
data_dir = "data"
log_level = "info"

[moka]
enabled = true
$moka_section
base_url = "http://127.0.0.1:18481"
timezone = "Asia/Jakarta"
poll_interval = "30s"
initial_backfill_days = 14
requests_per_minute = 120

[upstream]
url = "http://127.0.0.1:18480"
token = "demo-upstream-token"
batch_size = 200
flush_interval = "2s"

[checkout]
enabled = true
listen = "127.0.0.1:18686"
base_url = "http://127.0.0.1:18482"
store_id = "72"
secret_key = "9fff8c602b08b00323567be0001480f6"
timeout = "10s"

[[checkout.tablets]]
name = "Demo tablet"
token_sha256 = "504ebfaa505aefb863e5dae3f10120917c6ab873ed9acf08067947cbb34d081f"

[local_api]
listen = "127.0.0.1:18687"
$extra_sections
TOML

"$bin/pwbi-devstack" -moka-dialect "$dialect" ${stack_flags[@]+"${stack_flags[@]}"} &
stack=$!
trap 'kill $stack 2>/dev/null || true; wait $stack 2>/dev/null || true' EXIT INT TERM
sleep 0.5
echo
echo "Demo running (Moka dialect: $dialect; sinks: upstream${sinks:+,$sinks}). Dashboard: http://127.0.0.1:18687/"
if [ "$dialect" = oauth ]; then
	echo "Connect Moka first: click \"Connect Moka\" on the dashboard, or run"
	echo "  $bin/pwbi-agent moka connect --config $dir/config.toml"
	echo "and click \"Authorize\" on the fake Moka page that opens."
fi
echo "Status:  curl -s http://127.0.0.1:18687/v1/status"
echo "Sync:    $bin/pwbi-agent sync --config $dir/config.toml"
echo "Checkout (tablet token: $tablet_token):"
echo "  curl -s -H 'Authorization: Bearer $tablet_token' http://127.0.0.1:18686/mokka/factoring/v1/precheck/auth \\"
echo "    -d '{\"callback_url\":\"http://127.0.0.1:18686/mokka/callback\",\"redirect_url\":\"http://127.0.0.1:18686/\",\"current_order\":{\"order_id\":\"DEMO-1\",\"amount\":\"150.00\"}}'"
echo "  then open the iframe_url it answers (SMS code 1111), and:"
echo "  curl -s -H 'Authorization: Bearer $tablet_token' http://127.0.0.1:18686/mokka/orders/DEMO-1"
echo "Press Ctrl-C to stop."
echo
"$bin/pwbi-agent" run --config "$dir/config.toml"
