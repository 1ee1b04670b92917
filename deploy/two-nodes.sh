#!/usr/bin/env bash
# Two management nodes in cluster mode against this machine's MariaDB and RabbitMQ, without
# Docker: the topology of docker-compose.yml. See deploy/README.md.
#
#   deploy/two-nodes.sh            start both, print their URLs, run until Ctrl-C
#   deploy/two-nodes.sh --check    start both, check they are healthy and see each other
#                                  in the ring, stop them and exit (0: all good)
#
# Each run makes a throwaway database (zstack_2n_<random>) and RabbitMQ vhost, and removes
# both when it ends (ZSTACK_KEEP=1 keeps them). Settings (environment):
#   ZSTACK_MARIADB      mariadb client args   default: -h 127.0.0.1 -P 3306 -u root
#   ZSTACK_DB_USER_URL  user:password@host:port in the nodes' DB URL   default: root@127.0.0.1:3306
#   ZSTACK_AMQP_HOST    user:password@host:port of RabbitMQ            default: guest:guest@127.0.0.1:5672
#   ZSTACK_PORTS        the two HTTP ports                             default: "8080 8081"
#   ZSTACK_ADMIN_PASSWORD  the admin's first password                  default: generated, printed
#   ZSTACK_RUN_DIR      logs and data                                  default: a temp dir
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-run}
case "$mode" in run|--check) ;; *) echo "usage: deploy/two-nodes.sh [--check]" >&2; exit 2 ;; esac

py=.venv/bin/python
[ -x "$py" ] || { echo "two-nodes: run .ci/bootstrap test --co -q (or run) first" >&2; exit 2; }
read -r -a mariadb_args <<<"${ZSTACK_MARIADB:--h 127.0.0.1 -P 3306 -u root}"
db_user_url=${ZSTACK_DB_USER_URL:-root@127.0.0.1:3306}
amqp_host=${ZSTACK_AMQP_HOST:-guest:guest@127.0.0.1:5672}
read -r -a ports <<<"${ZSTACK_PORTS:-8080 8081}"
run_dir=${ZSTACK_RUN_DIR:-$(mktemp -d -t zstackpy-two-nodes-XXXXXX)}
admin_password=${ZSTACK_ADMIN_PASSWORD:-$("$py" -c 'import secrets; print(secrets.token_urlsafe(12))')}
suffix=$("$py" -c 'import uuid; print(uuid.uuid4().hex[:12])')
db=zstack_2n_$suffix
vhost=zstack-2n-$suffix
pids=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${ZSTACK_KEEP:-0}" != 1 ]; then
    mariadb "${mariadb_args[@]}" -e "DROP DATABASE IF EXISTS \`$db\`" || true
    rabbitmqctl -q delete_vhost "$vhost" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "two-nodes: database $db, vhost $vhost, logs in $run_dir" >&2
mariadb "${mariadb_args[@]}" -e "CREATE DATABASE \`$db\` CHARACTER SET utf8mb4"
rabbitmqctl -q add_vhost "$vhost" >/dev/null
rabbitmqctl -q set_permissions -p "$vhost" "${amqp_host%%:*}" '.*' '.*' '.*' >/dev/null

export ZSTACK_DB_URL="mysql+asyncmy://$db_user_url/$db"
export ZSTACK_BUS_URL="amqp://$amqp_host/$vhost"
export ZSTACK_ADMIN_PASSWORD=$admin_password
export ZSTACK_HTTP_HOST=127.0.0.1
.venv/bin/zstackpy db upgrade

for i in 0 1; do
  port=${ports[$i]}
  ZSTACK_HTTP_PORT=$port ZSTACK_DATA_DIR="$run_dir/node$((i + 1))" \
    .venv/bin/zstackpy run >"$run_dir/node$((i + 1)).out" 2>"$run_dir/node$((i + 1)).log" &
  pids+=($!)
done

# Both healthy, and each one's ring holds both nodes: they see each other.
"$py" - "${ports[@]}" <<'EOF'
import json, sys, time, urllib.request

ports = sys.argv[1:]
deadline = time.monotonic() + 90
last = {}
while time.monotonic() < deadline:
    health = {}
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                health[port] = json.load(r)
        except Exception as exc:  # not up yet, or 503 while joining
            health[port] = {"error": str(exc)}
    last = health
    uuids = {h.get("uuid") for h in health.values()}
    if all(h.get("state") == "ready" and set(h.get("ring", [])) == uuids for h in health.values()):
        for port, h in health.items():
            print(f"node {h['uuid']} ready at http://127.0.0.1:{port}/ (ring: {len(h['ring'])})")
        sys.exit(0)
    time.sleep(0.5)
print(f"two-nodes: the nodes did not become ready together: {json.dumps(last)}", file=sys.stderr)
sys.exit(1)
EOF

if [ "$mode" = --check ]; then
  echo "two-nodes: both nodes are healthy and see each other" >&2
  exit 0
fi
echo "admin password: $admin_password (Ctrl-C stops both nodes)" >&2
wait -n "${pids[@]}"
