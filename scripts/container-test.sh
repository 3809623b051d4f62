#!/usr/bin/env bash
# Build the container image with podman and run it the ways it is deployed, checking:
#   image      uid 10001, no pip, OCI labels, STOPSIGNAL, a HEALTHCHECK (docker format)
#   dev        read-only root + tmpfs /tmp, a data volume: liveness, readiness, discovery,
#              an example card; the HEALTHCHECK follows a changed port
#   secure     no trusted clients: live but not ready (503), calls refused with 401
#   secrets    *_FILE settings from mounted files: ready, nothing secret in inspect or logs;
#              a missing secret file stops the service naming the variable
#   read-only  read-only root and no tmpfs at all: still starts (shared memory)
#   volume     a data volume owned by root: stops with a message naming uid 10001
#   kubernetes SPINE_CDS_PORT=tcp://..., SPINE_CDS_SERVICE_HOST... injected: starts on the
#              default port and logs what it ignored; a mistyped setting still stops it
#   sigterm    SIGTERM during a call (slow FHIR server): the call completes, exit 0
#
# podman without systemd says it cannot set up health-check timers; such notices go to a
# log that is shown only when starting a container fails (the checks run the health
# check themselves). Needs root (or sudo) to install Debian's podman, buildah, runc and mmdebstrap when
# missing. When the base image of the Dockerfile cannot be pulled (no registry reachable),
# a local one is made from Debian's packages (mmdebstrap: the release plus python3) and
# the script says so. Every service listens on 127.0.0.1 only; every container, volume
# and process started here is removed at exit. Set BASE_IMAGE to use another base.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS

IMAGE="${SPINE_CDS_TEST_IMAGE:-localhost/spine-cds:container-test}"
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
RUN=("${PODMAN[@]}" run --ulimit nofile=20000:20000 --ulimit nproc=1000:1000)
PREFIX="spine-cds-ct-$$"
WORK="$(mktemp -d)"
containers=()
pids=()
failures=0

say() { printf '\n== %s\n' "$*"; }
pass() { printf '   ok    %s\n' "$*"; }
fail() {
    printf '   FAIL  %s\n' "$*"
    failures=$((failures + 1))
}
check() { # check "description" command...
    local what="$1"
    shift
    if "$@" >"$WORK/check.out" 2>&1; then pass "$what"; else
        fail "$what"
        sed 's/^/         /' "$WORK/check.out" | tail -20
    fi
}

cleanup() {
    for name in "${containers[@]}"; do
        "${PODMAN[@]}" rm --force --volumes --time 0 "$name" >/dev/null 2>&1 || true
    done
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# --- tools -----------------------------------------------------------------------------
if ! command -v podman >/dev/null || ! command -v buildah >/dev/null \
    || ! command -v runc >/dev/null || ! command -v mmdebstrap >/dev/null; then
    SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
    echo "Installing Debian's podman, buildah, runc and mmdebstrap ..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        podman buildah runc mmdebstrap uidmap fuse-overlayfs slirp4netns >/dev/null
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# --- the base image ----------------------------------------------------------------------
say "base image"
if [ -n "${BASE_IMAGE:-}" ]; then
    base="$BASE_IMAGE"
    echo "   BASE_IMAGE=$base (given)"
else
    default_base="$(sed -n 's/^ARG BASE_IMAGE=//p' Dockerfile)"
    if timeout 120 "${PODMAN[@]}" pull --quiet "$default_base" >"$WORK/pull.log" 2>&1; then
        base="$default_base"
        echo "   pulled the Dockerfile's base image $default_base"
    else
        . /etc/os-release
        base="localhost/spine-cds-base:${VERSION_CODENAME}"
        echo "   NOTE: could not pull $default_base ($(tail -1 "$WORK/pull.log" | cut -c1-160))"
        if "${PODMAN[@]}" image exists "$base"; then
            echo "   using the local Debian base made earlier: $base"
        else
            echo "   making a local base instead: Debian ${VERSION_CODENAME} + python3 (mmdebstrap)"
            sources=/etc/apt/sources.list.d/debian.sources
            [ -f "$sources" ] || sources=/etc/apt/sources.list
            t0=$SECONDS
            mmdebstrap --quiet --variant=minbase \
                --include=python3,python3-venv,ca-certificates \
                --dpkgopt='path-exclude=/usr/share/doc/*' \
                --dpkgopt='path-exclude=/usr/share/man/*' \
                --dpkgopt='path-exclude=/usr/share/locale/*' \
                --aptopt='Acquire::Languages "none"' \
                --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
                --format=tar "$VERSION_CODENAME" "$WORK/base.tar" "$sources" </dev/null
            "${PODMAN[@]}" import --quiet --change 'CMD ["python3"]' "$WORK/base.tar" "$base" >/dev/null
            rm -f "$WORK/base.tar"
            echo "   made $base in $((SECONDS - t0)) s"
        fi
    fi
fi

# --- build ---------------------------------------------------------------------------------
say "build"
build_args=(--isolation chroot --network host --format docker
    --build-arg "BASE_IMAGE=$base"
    --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
# The build's pip needs the CA this machine trusts when its network inspects TLS.
for bundle in "${PIP_CERT:-}" "${SSL_CERT_FILE:-}" /etc/ssl/certs/ca-certificates.crt; do
    if [ -n "$bundle" ] && [ -s "$bundle" ]; then
        build_args+=(--secret "id=ca-bundle,src=$bundle")
        break
    fi
done
t0=$SECONDS
"${PODMAN[@]}" build "${build_args[@]}" --tag "$IMAGE" . >"$WORK/build.log" 2>&1 || {
    tail -40 "$WORK/build.log"
    echo "the image did not build"
    exit 1
}
build_seconds=$((SECONDS - t0))
size=$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}')
echo "   built $IMAGE in ${build_seconds} s; size $((size / 1000000)) MB"

# --- the image -----------------------------------------------------------------------------
say "image"
inspect() { "${PODMAN[@]}" image inspect "$IMAGE" --format "$1"; }
check "runs as uid 10001" test "$(inspect '{{.Config.User}}')" = "10001:10001"
check "STOPSIGNAL SIGTERM" test "$(inspect '{{.Config.StopSignal}}')" = "SIGTERM"
check "a HEALTHCHECK probing readiness (docker format keeps it)" \
    grep -q '/readyz' <<<"$(inspect '{{json .Config.Healthcheck}}')"
check "OCI labels: title, version, revision, licenses" bash -c \
    "grep -q '\"org.opencontainers.image.title\":\"spine-cds\"' <<<'$(inspect '{{json .Config.Labels}}')' &&
     grep -q 'org.opencontainers.image.revision' <<<'$(inspect '{{json .Config.Labels}}')' &&
     grep -q '\"org.opencontainers.image.licenses\":\"Apache-2.0\"' <<<'$(inspect '{{json .Config.Labels}}')'"
check "no pip and no source tree in the runtime image" "${RUN[@]}" --rm --network none \
    --entrypoint sh "$IMAGE" -c '! python3 -m pip --version 2>/dev/null && ! test -e /src && test "$(id -u)" = 10001'

# --- running it ----------------------------------------------------------------------------
# start NAME PORT [podman run options...] -- [environment NAME=value...]
start() {
    local name="$PREFIX-$1" port="$2"
    shift 2
    local opts=() envs=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        opts+=("$1")
        shift
    done
    [ $# -gt 0 ] && shift
    for e in "$@"; do envs+=(--env "$e"); done
    containers+=("$name")
    "${RUN[@]}" --detach --name "$name" --network host \
        --env SPINE_CDS_HOST=127.0.0.1 --env "SPINE_CDS_PORT=$port" \
        "${opts[@]}" "${envs[@]}" "$IMAGE" >/dev/null 2>>"$WORK/podman.log" || {
        tail -5 "$WORK/podman.log"
        return 1
    }
}
# wait_up NAME PORT: until /livez answers (or the container has stopped)
wait_up() {
    local name="$PREFIX-$1" port="$2"
    for _ in $(seq 1 150); do
        curl -fsS -o /dev/null "http://127.0.0.1:$port/livez" 2>/dev/null && return 0
        [ "$("${PODMAN[@]}" inspect "$name" --format '{{.State.Running}}')" = true ] || return 1
        sleep 0.2
    done
    return 1
}
# wait_exit NAME: the container's exit code once it stops (by itself, within 60 s)
wait_exit() {
    timeout 60 "${PODMAN[@]}" wait "$PREFIX-$1"
}
logs() { "${PODMAN[@]}" logs "$PREFIX-$1" 2>&1; }
status_of() { curl -s -o "$WORK/body" -w '%{http_code}' "$@"; }
volume_dir() { # a host directory for /var/lib/spine-cds, owned by OWNER
    local dir
    dir="$(mktemp -d "$WORK/vol.XXXXXX")"
    chown "$1" "$dir"
    chmod 0755 "$dir"
    echo "$dir"
}

# Requests made by the image's own code: the first example patient (improving), with
# prefetch, and the same patient with nothing prefetched, fetched from FHIR_SERVER.
make_request() {
    "${RUN[@]}" --rm --network none --entrypoint python3 "$IMAGE" -c '
import json, sys, uuid
from datetime import date
from cds_service.discovery import load_discovery
from cds_service.examples.stored import load_example
from cds_service.ehr_requests import build_request, bundle_resources, local_prefetch
entry = next(s for s in load_discovery().services.values() if s.hook == "order-select")
example = load_example("e01-improving", date.today())
if sys.argv[1] == "prefetch":
    request = build_request("order-select", str(uuid.uuid4()), example.patient_id, example.draft_order)
    request["prefetch"] = local_prefetch(entry.prefetch, request["context"], bundle_resources(example.bundle))
else:
    request = build_request("order-select", str(uuid.uuid4()), example.patient_id,
                            example.draft_order, fhir_server=sys.argv[1], access_token="t0ken")
print(entry.id)
print(json.dumps(request))
' "$1" 2>>"$WORK/podman.log"
}
make_request prefetch >"$WORK/example"
SERVICE_ID="$(head -1 "$WORK/example")"
sed -n 2p "$WORK/example" >"$WORK/example.json"

say "development mode: read-only root with a tmpfs, a data volume, a port that is not 8080"
port=$(free_port)
data="$(volume_dir 10001:10001)"
start dev "$port" --read-only --tmpfs /tmp --volume "$data:/var/lib/spine-cds" \
    -- SPINE_CDS_DEV_MODE=true
if wait_up dev "$port"; then
    check "liveness /health and /livez: 200" bash -c \
        "curl -fsS http://127.0.0.1:$port/health && curl -fsS http://127.0.0.1:$port/livez"
    check "readiness /readyz: 200, configuration and database ok" bash -c \
        "curl -fsS http://127.0.0.1:$port/readyz | grep -q '\"database\":\"ok\"'"
    check "discovery lists $SERVICE_ID" bash -c \
        "curl -fsS http://127.0.0.1:$port/cds-services | grep -q '\"$SERVICE_ID\"'"
    code=$(status_of -H 'Content-Type: application/json' --data-binary "@$WORK/example.json" \
        "http://127.0.0.1:$port/cds-services/$SERVICE_ID")
    check "the improving example gets the advise-against card (200)" bash -c \
        "test $code = 200 && grep -q '\"recommendation\":\"advise-against\"' '$WORK/body' &&
         grep -q '\"indicator\":\"warning\"' '$WORK/body'"
    check "the HEALTHCHECK follows the port ($port) and passes" \
        "${PODMAN[@]}" healthcheck run "$PREFIX-dev"
    check "the SQLite database is on the volume" test -s "$data/spine-cds.sqlite3"
    check "the startup line offers no address no one can open" bash -c \
        "logs() { ${PODMAN[*]} logs $PREFIX-dev 2>&1; }; logs | grep -q 'serving http://127.0.0.1:$port/cds-services' && ! logs | grep -q 'http://0.0.0.0'"
else
    fail "the development-mode container did not start"
    logs dev | tail -20
fi

say "secure mode without trusted clients"
# Secure mode takes the audit's patient-hash key from a setting: 32 random bytes, in hex.
HASH_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
port=$(free_port)
start secure "$port" --read-only --tmpfs /tmp -- \
    "SPINE_CDS_PUBLIC_BASE_URL=http://127.0.0.1:$port" SPINE_CDS_DATABASE_PATH=/tmp/db.sqlite3 \
    "SPINE_CDS_AUDIT_HASH_KEY=$HASH_KEY"
if wait_up secure "$port"; then
    check "live: /livez 200" curl -fsS "http://127.0.0.1:$port/livez"
    code=$(status_of "http://127.0.0.1:$port/readyz")
    check "not ready: /readyz 503 naming the missing trusted clients" bash -c \
        "test $code = 503 && grep -q 'no trusted CDS clients' '$WORK/body'"
    code=$(status_of -H 'Content-Type: application/json' --data-binary "@$WORK/example.json" \
        -D "$WORK/headers" "http://127.0.0.1:$port/cds-services/$SERVICE_ID")
    check "a hook call without a client JWT: 401 with WWW-Authenticate" bash -c \
        "test $code = 401 && grep -qi '^www-authenticate: Bearer' '$WORK/headers'"
    check "the HEALTHCHECK says unhealthy" bash -c "! ${PODMAN[*]} healthcheck run $PREFIX-secure"
else
    fail "the secure-mode container did not start"
    logs secure | tail -20
fi

start nokey "$(free_port)" --read-only --tmpfs /tmp -- \
    SPINE_CDS_PUBLIC_BASE_URL=http://127.0.0.1:8080 SPINE_CDS_DATABASE_PATH=/tmp/db.sqlite3
rc=$(wait_exit nokey || true)
check "secure mode without audit_hash_key stops (exit $rc), naming the setting" bash -c \
    "test '$rc' != 0 && ${PODMAN[*]} logs $PREFIX-nokey 2>&1 |
     grep -q 'audit_hash_key must be set outside development mode'"

say "secrets from files (*_FILE)"
mkdir -p "$WORK/secrets"
printf 'container-test-hash-key-%s-%s\n' "$$" "$HASH_KEY" >"$WORK/secrets/audit-hash-key"
# A trusted client with an inline-published key set (never called here).
printf '{"keys": []}' >"$WORK/secrets/jwks.json"
printf '[{"iss": "https://ehr.example.org", "jwks_file": "/run/secrets/jwks.json"}]' \
    >"$WORK/secrets/clients.json"
chmod 0644 "$WORK/secrets"/*
port=$(free_port)
start secrets "$port" --read-only --tmpfs /tmp --volume "$WORK/secrets:/run/secrets:ro" -- \
    "SPINE_CDS_PUBLIC_BASE_URL=http://127.0.0.1:$port" SPINE_CDS_DATABASE_PATH=/tmp/db.sqlite3 \
    SPINE_CDS_AUDIT_HASH_KEY_FILE=/run/secrets/audit-hash-key \
    SPINE_CDS_TRUSTED_CLIENTS_FILE=/run/secrets/clients.json
if wait_up secrets "$port"; then
    check "secure mode with a trusted client: ready" curl -fsS "http://127.0.0.1:$port/readyz"
    check "the key is read from its file and never shown (inspect, logs)" bash -c \
        "! ${PODMAN[*]} inspect $PREFIX-secrets | grep -q container-test-hash-key &&
         ! ${PODMAN[*]} logs $PREFIX-secrets 2>&1 | grep -q container-test-hash-key &&
         ${PODMAN[*]} logs $PREFIX-secrets 2>&1 | grep -q 'audit_hash_key read from the file named by SPINE_CDS_AUDIT_HASH_KEY_FILE'"
else
    fail "the container with secrets from files did not start"
    logs secrets | tail -20
fi
start nosecret "$(free_port)" --read-only --tmpfs /tmp -- SPINE_CDS_DEV_MODE=true \
    SPINE_CDS_DATABASE_URL_FILE=/run/secrets/database-url
rc=$(wait_exit nosecret || true)
check "a missing secret file stops it (exit $rc), naming the variable" bash -c \
    "test '$rc' != 0 && ${PODMAN[*]} logs $PREFIX-nosecret 2>&1 |
     grep -q 'SPINE_CDS_DATABASE_URL_FILE: cannot read /run/secrets/database-url'"

say "read-only root filesystem with no tmpfs at all"
port=$(free_port)
start rootro "$port" --read-only --read-only-tmpfs=false \
    --volume "$(volume_dir 10001:10001):/var/lib/spine-cds" -- SPINE_CDS_DEV_MODE=true
if wait_up rootro "$port"; then
    check "starts and is ready (metrics and heartbeats in shared memory)" \
        curl -fsS "http://127.0.0.1:$port/readyz"
    check "/metrics adds up the workers" bash -c \
        "curl -fsS http://127.0.0.1:$port/metrics | grep -q spine_cds"
else
    fail "the service did not start on a read-only root filesystem"
    logs rootro | tail -20
fi

say "a data volume owned by root"
start rootvol "$(free_port)" --read-only --tmpfs /tmp \
    --volume "$(volume_dir 0:0):/var/lib/spine-cds" -- SPINE_CDS_DEV_MODE=true
rc=$(wait_exit rootvol || true)
check "stops (exit $rc) saying the directory is not writable by uid 10001 and what to do" bash -c \
    "test '$rc' != 0 && ${PODMAN[*]} logs $PREFIX-rootvol 2>&1 | grep -q 'owned by uid 0' &&
     ${PODMAN[*]} logs $PREFIX-rootvol 2>&1 | grep -q 'not writable by this process (uid 10001' &&
     ${PODMAN[*]} logs $PREFIX-rootvol 2>&1 | grep -q 'fsGroup: 10001'"

say "Kubernetes service links of a Service named spine-cds"
# Its own network namespace: the service takes the default port 8080 there, and the
# HEALTHCHECK (run inside the container) checks it.
name="$PREFIX-k8s"
containers+=("$name")
"${RUN[@]}" --detach --name "$name" --network none --read-only --tmpfs /tmp \
    --env SPINE_CDS_DEV_MODE=true \
    --env SPINE_CDS_SERVICE_HOST=10.96.0.12 --env SPINE_CDS_SERVICE_PORT=8080 \
    --env SPINE_CDS_SERVICE_PORT_HTTP=8080 --env SPINE_CDS_PORT=tcp://10.96.0.12:8080 \
    --env SPINE_CDS_PORT_8080_TCP=tcp://10.96.0.12:8080 --env SPINE_CDS_PORT_8080_TCP_PROTO=tcp \
    --env SPINE_CDS_PORT_8080_TCP_PORT=8080 --env SPINE_CDS_PORT_8080_TCP_ADDR=10.96.0.12 \
    "$IMAGE" >/dev/null 2>>"$WORK/podman.log"
healthy=no
for _ in $(seq 1 50); do
    if "${PODMAN[@]}" healthcheck run "$name" >/dev/null 2>&1; then
        healthy=yes
        break
    fi
    [ "$("${PODMAN[@]}" inspect "$name" --format '{{.State.Running}}')" = true ] || break
    sleep 0.3
done
check "starts, ready on port 8080 (the HEALTHCHECK inside the container)" test "$healthy" = yes
check "logs each ignored link, SPINE_CDS_PORT=tcp://... included" bash -c \
    "${PODMAN[*]} logs $name 2>&1 | grep -q 'ignored SPINE_CDS_PORT=tcp://10.96.0.12:8080: a Kubernetes service-link variable, not the port setting' &&
     test \$(${PODMAN[*]} logs $name 2>&1 | grep -c 'Kubernetes service-link variable') = 8 &&
     ${PODMAN[*]} logs $name 2>&1 | grep -q 'listening on all interfaces, port 8080'"
start typo "$(free_port)" --read-only --tmpfs /tmp -- SPINE_CDS_DEV_MODE=true SPINE_CDS_WORKRES=4
rc=$(wait_exit typo || true)
check "a mistyped setting still stops it (exit $rc), by name" bash -c \
    "test '$rc' != 0 && ${PODMAN[*]} logs $PREFIX-typo 2>&1 | grep -q 'SPINE_CDS_WORKRES: unknown setting'"

say "SIGTERM during a call"
fhir_port=$(free_port)
python3 - "$fhir_port" >"$WORK/fhir.log" 2>&1 <<'EOF' &
# A FHIR server that takes 3 s to answer every search with an empty Bundle.
import json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Slow(BaseHTTPRequestHandler):
    def do_GET(self):
        time.sleep(3)
        body = json.dumps({"resourceType": "Bundle", "type": "searchset", "entry": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
EOF
pids+=($!)
make_request "http://127.0.0.1:$fhir_port/fhir" | sed -n 2p >"$WORK/slow.json"
port=$(free_port)
start sigterm "$port" --read-only --tmpfs /tmp -- SPINE_CDS_DEV_MODE=true \
    SPINE_CDS_DATABASE_PATH=/tmp/db.sqlite3 SPINE_CDS_FHIR_CONNECT_TIMEOUT_SECONDS=1 \
    SPINE_CDS_FHIR_READ_TIMEOUT_SECONDS=6 SPINE_CDS_FHIR_BUDGET_SECONDS=7
if wait_up sigterm "$port"; then
    t0=$SECONDS
    curl -s -o "$WORK/slow.body" -w '%{http_code}' --max-time 30 \
        -H 'Content-Type: application/json' --data-binary "@$WORK/slow.json" \
        "http://127.0.0.1:$port/cds-services/$SERVICE_ID" >"$WORK/slow.code" &
    call=$!
    sleep 1
    "${PODMAN[@]}" kill --signal TERM "$PREFIX-sigterm" >/dev/null
    wait "$call" || true
    rc=$(wait_exit sigterm || echo none)
    check "the call in flight completes: $(cat "$WORK/slow.code") after $((SECONDS - t0)) s" bash -c \
        "test \"\$(cat '$WORK/slow.code')\" = 200 && grep -q '\"cards\"' '$WORK/slow.body'"
    if [ "$(cat "$WORK/slow.code")" != 200 ]; then # say why, for whoever reads CI's log
        sed 's/^/         body: /' "$WORK/slow.body" | head -5
        logs sigterm | grep -v ' GET /readyz\| GET /livez' | tail -25 | sed 's/^/         /'
    fi
    check "gunicorn (PID 1) exits 0 within its graceful timeout (exit $rc)" test "$rc" = 0
    check "the log shows the graceful stop" bash -c \
        "${PODMAN[*]} logs $PREFIX-sigterm 2>&1 | grep -q 'Handling signal: term'"
else
    fail "the container for the SIGTERM check did not start"
    logs sigterm | tail -20
fi

say "summary"
echo "   image $IMAGE: $((size / 1000000)) MB, built in ${build_seconds} s"
echo "   container test took $((SECONDS - started)) s"
if [ "$failures" -gt 0 ]; then
    echo "   $failures check(s) FAILED"
    exit 1
fi
echo "   every check passed"
