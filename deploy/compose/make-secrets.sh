#!/bin/sh
# Make the compose deployment's secrets, once: random passwords and keys written to
# deploy/compose/secrets/ (or the directory given), which git ignores. A file that is
# already there is kept, so the PostgreSQL volume's password keeps working; delete the
# directory (and the postgres-data volume) to start afresh.
#
#   sh deploy/compose/make-secrets.sh && docker compose -f deploy/compose/compose.yaml up --build
set -eu
dir="${1:-$(dirname "$0")/secrets}"
umask 077
mkdir -p "$dir"
chmod 0700 "$dir"

random() { # 32 random bytes in hexadecimal: safe in a URL and a config file as they are
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n'
}
# write NAME CONTENT: only when NAME is missing. Readable by the containers' users
# (the service's uid 10001, postgres, redis) through the mount; the directory is 0700.
write() {
    if [ -e "$dir/$1" ]; then
        echo "kept    $dir/$1"
    else
        printf '%s\n' "$2" >"$dir/$1"
        chmod 0644 "$dir/$1"
        echo "made    $dir/$1"
    fi
}

if [ ! -e "$dir/postgres-password" ] || [ ! -e "$dir/database-url" ]; then
    pg="$(random)"
    rm -f "$dir/postgres-password" "$dir/database-url"
    write postgres-password "$pg"
    write database-url "postgresql://spine_cds:$pg@postgres:5432/spine_cds"
else
    echo "kept    $dir/postgres-password, $dir/database-url"
fi
if [ ! -e "$dir/redis.conf" ] || [ ! -e "$dir/redis-url" ]; then
    rd="$(random)"
    rm -f "$dir/redis.conf" "$dir/redis-url"
    write redis.conf "$(printf 'requirepass %s\nsave ""\nappendonly no' "$rd")"
    write redis-url "redis://:$rd@redis:6379/0"
else
    echo "kept    $dir/redis.conf, $dir/redis-url"
fi
write audit-hash-key "$(random)"
