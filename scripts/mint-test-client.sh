#!/usr/bin/env bash
# Mint a test CDS client for trying secure mode locally: a P-384 signing key, its public
# JWKS and a trusted-clients file naming it (and the local FHIR test server,
# http://127.0.0.1:8090/fhir, as the one FHIR server it may name), written OUTSIDE the
# checkout (a private key must never be committed). Prints the commands that start the
# FHIR test server, serve with it and call with it.
#   bash scripts/mint-test-client.sh                  # into ~/.local/state/spine-cds-test-client
#   bash scripts/mint-test-client.sh /some/other/dir  # anywhere outside the checkout
#   bash scripts/mint-test-client.sh --fhir-server http://127.0.0.1:8091/fhir
#       # the FHIR server the client may name, when it is not the test server on 8090
#       # (every call naming another one is refused: 400 at $.fhirServer)
# Test use only: the issuer is https://test-client.invalid.
set -euo pipefail
checkout="$(cd "$(dirname "$0")/.." && pwd -P)"
# The FHIR server the client may name (clients.json's fhir_servers) and the printed `try`
# command names: by default the project's test server on loopback, which a client may
# name only when its entry lists it.
fhir="http://127.0.0.1:8090/fhir"
target=""
while [ $# -gt 0 ]; do
    case "$1" in
        --fhir-server)
            [ $# -ge 2 ] || { echo "mint-test-client: --fhir-server needs a URL" >&2; exit 2; }
            fhir="$2"; shift 2 ;;
        --fhir-server=*) fhir="${1#--fhir-server=}"; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "mint-test-client: unknown option $1 (--fhir-server URL, or a directory)" >&2; exit 2 ;;
        *)
            [ -z "$target" ] || { echo "mint-test-client: one directory only" >&2; exit 2; }
            target="$1"; shift ;;
    esac
done
case "$fhir" in
    http://?*|https://?*) ;;
    *) echo "mint-test-client: --fhir-server $fhir: expected an http(s) base URL" >&2; exit 2 ;;
esac
fhir="${fhir%/}"  # as the service compares it: a base URL without a trailing slash
dir="$(realpath -m "${target:-${XDG_STATE_HOME:-$HOME/.local/state}/spine-cds-test-client}")"
case "$dir/" in
    "$checkout"/*) echo "mint-test-client: $dir is inside the checkout; choose a directory outside it" >&2; exit 2 ;;
esac
mkdir -p "$dir"
if [ ! -x "$checkout/.venv/bin/spine-cds" ]; then
    (cd "$checkout" && bash scripts/setup.sh)
fi
iss="https://test-client.invalid"
key="$dir/client-key.pem"
if [ ! -f "$key" ]; then
    (umask 077 && "$checkout/.venv/bin/python" - "$key" <<'PY'
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP384R1())
pem = key.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
)
with open(sys.argv[1], "wb") as out:
    out.write(pem)
PY
    )
fi
"$checkout/.venv/bin/spine-cds" client-jwks "$key" > "$dir/client-jwks.json"
"$checkout/.venv/bin/python" - "$dir/clients.json" "$iss" "$dir/client-jwks.json" "$fhir" <<'PY'
import json
import sys
out, iss, jwks_file, fhir = sys.argv[1:]
with open(out, "w", encoding="utf-8") as f:
    json.dump([{"iss": iss, "jwks_file": jwks_file, "fhir_servers": [fhir]}], f)
    f.write("\n")
PY
# Secure mode also needs a secret key for the audit's patient-id hash (32+ random characters).
if [ ! -f "$dir/audit-hash-key" ]; then
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$dir/audit-hash-key")
fi
# The printed commands are copied as they are: quote the paths for the shell.
q_clients="$(printf '%q' "$dir/clients.json")"
q_hash_key="$(printf '%q' "$dir/audit-hash-key")"
q_key="$(printf '%q' "$key")"
q_fhir="$(printf '%q' "$fhir")"
# The project's FHIR test server on the port the URL names; any other server is the
# user's, which needs the example patients loaded into it.
if [[ "$fhir" =~ ^http://127\.0\.0\.1:([0-9]+)/fhir$ ]]; then
    step1="the FHIR test server with the example patients (until Ctrl-C):
  bash scripts/fhir-test-server.sh --port ${BASH_REMATCH[1]} --load-examples"
else
    step1="the example patients, into the FHIR server at $fhir:
  .venv/bin/spine-cds load-examples --fhir-server $q_fhir"
fi
cat <<MSG
Test client minted in $dir:
  client-key.pem    its private key (keep it there)
  client-jwks.json  its public key set
  clients.json      a trusted_clients_file naming it (iss $iss, FHIR server $fhir)
  audit-hash-key    a random key for the audit's patient-id hash
Each in a terminal of its own, from the checkout:
1. $step1
2. the service in secure mode with this client (until Ctrl-C):
  SPINE_CDS_DEV_MODE=false SPINE_CDS_PUBLIC_BASE_URL=http://127.0.0.1:8080 SPINE_CDS_TRUSTED_CLIENTS_FILE=$q_clients SPINE_CDS_AUDIT_HASH_KEY_FILE=$q_hash_key bash scripts/serve.sh
3. a call as that client:
  .venv/bin/spine-cds try --service-url http://127.0.0.1:8080 --client-key $q_key --client-iss $iss --fhir-server $q_fhir --patient spine-cds-e1 --order 'http://www.ama-assn.org/go/cpt|72158'
MSG
