#!/bin/sh
# Authenticode-signs Windows files in place with osslsigncode, when
# SIGN_CERT (PEM or DER certificate, with its chain) and SIGN_KEY (its
# private key) are set; otherwise does nothing. Optional:
#   SIGN_PASS            the key's passphrase
#   SIGN_TIMESTAMP_URL   an RFC 3161 timestamp server (keeps signatures valid
#                        after the certificate expires; needs the network)
#   SIGN_CA              a CA bundle to verify the signatures against
# Usage: scripts/sign.sh FILE...
set -eu
if [ -z "${SIGN_CERT:-}" ] || [ -z "${SIGN_KEY:-}" ]; then
	echo "sign: SIGN_CERT/SIGN_KEY not set, not signing $*"
	exit 0
fi
for f in "$@"; do
	set -- -certs "$SIGN_CERT" -key "$SIGN_KEY" -h sha256 \
		-n "PWBI Edge Agent" -i "https://pwbi.example"
	if [ -n "${SIGN_PASS:-}" ]; then
		set -- "$@" -pass "$SIGN_PASS"
	fi
	if [ -n "${SIGN_TIMESTAMP_URL:-}" ]; then
		set -- "$@" -ts "$SIGN_TIMESTAMP_URL"
	fi
	osslsigncode sign "$@" -in "$f" -out "$f.signed" >/dev/null
	mv "$f.signed" "$f"
	if [ -n "${SIGN_CA:-}" ]; then
		osslsigncode verify -CAfile "$SIGN_CA" -in "$f" >/dev/null
		echo "sign: signed and verified $f"
	else
		echo "sign: signed $f (set SIGN_CA to verify)"
	fi
done
