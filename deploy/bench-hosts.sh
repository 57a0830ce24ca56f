# shellcheck shell=bash
# deploy/bench's `hosts` section (docs/benchmarks.md), sourced by deploy/bench after
# lib.sh and start_components (PostgreSQL on 127.0.0.1:$PG_PORT):
#
# 1. Container-task throughput with 1, 2 and 3 executor hosts in one run. Each host is one
#    saltant-host container (deploy/images) with its own Docker Engine, on a private
#    network made here; the busybox test image is loaded into each engine from a tarball
#    (nothing is pulled). NATS, PostgreSQL and api + scheduler + log-collector run on this
#    machine; NATS listens on the network's gateway address, the only host address the
#    containers reach. Host k serves queues hosts-k … hosts-3, so queue hosts-n is served
#    by exactly n hosts: n hosts' figure is a load on queue hosts-n.
# 2. No-op (executable `true`) throughput with NATS as a 3-node JetStream cluster on
#    127.0.0.1 (bus.replicas = 3) against one node (bus.replicas = 1): separate processes
#    on this machine, one executor with 8 slots, as in the e2e section; the order is
#    3, 1, 1, 3 (each on fresh servers and a fresh database) and each figure is the mean
#    of its two runs, so that a drift of the machine during the run falls on both.
#
# Every loop has a deadline. Everything made here (containers, network, databases,
# processes, images) carries this run's name or label and is removed on exit
# (hosts_cleanup, from deploy/bench's trap).
#
#   SALTANT_BENCH_HOSTS_CONTAINERS  container instances per host count (default 60)
#   SALTANT_BENCH_HOSTS_NOOP        no-op instances per NATS run (default 2000)
#   SALTANT_BENCH_HOSTS_SLOTS       slots of each executor host (default 4)
#   SALTANT_BENCH_HOSTS_PORT        first of the ports used on this machine (default 36000)

HOSTS_RUN="saltant-bench-hosts-$$"
HOSTS_LABEL="saltant-bench=$HOSTS_RUN"
HOSTS_IMAGE="saltant-bench/busybox:$$"
HOSTS_DBS=()
HOSTS_PIDS=()
HOSTS_NET=""
HOSTS_RESULTS=()

hosts_cleanup() {
    local db
    hosts_stop_processes
    docker ps -aq --filter "label=$HOSTS_LABEL" 2>/dev/null | xargs -r docker rm -f -v >/dev/null 2>&1 || true
    [ -z "$HOSTS_NET" ] || docker network rm "$HOSTS_NET" >/dev/null 2>&1 || true
    docker image rm "$HOSTS_IMAGE" >/dev/null 2>&1 || true
    for db in "${HOSTS_DBS[@]}"; do
        "$PG_BIN/psql" -q "$PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true
    done
    HOSTS_DBS=()
}

hosts_stop_processes() {
    local pid
    for pid in "${HOSTS_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${HOSTS_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    HOSTS_PIDS=()
}

# A process of this section (stopped by hosts_stop_processes, or by stop_started on exit).
hosts_spawn() { # log command...
    local log=$1; shift
    "$@" >"$log" 2>&1 &
    HOSTS_PIDS+=($!)
    STARTED_PIDS+=($!)
}

now() { date +%s.%N; }

# A fresh database with the schema and a superuser; sets DB_URL and TOKEN.
hosts_database() { # name
    create_database "$1"
    HOSTS_DBS+=("$1")
    DB_URL="postgres://postgres@127.0.0.1:$PG_PORT/$1"
    SALTANT_DATABASE_URL=$DB_URL "$SALTANT_BIN" migrate >/dev/null
    TOKEN=$(SALTANT_DATABASE_URL=$DB_URL "$SALTANT_BIN" admin create-user bench --superuser | tail -n 1)
}

# api, scheduler and log-collector on this machine (RUST_LOG=warn, as the e2e section).
hosts_services() { # dir nats_url replicas
    local dir=$1 nats=$2 replicas=$3 port
    mkdir -p "$dir"
    # Logs and results buckets of 1 GiB, not 4: JetStream reserves their maximum from the
    # disk space it sees, and a bench machine's disk may hold less than 8 GiB free.
    local common=(env SALTANT_DATABASE_URL="$DB_URL" SALTANT_NATS_URL="$nats"
        SALTANT_BUS__REPLICAS="$replicas" RUST_LOG=warn SALTANT_LOG_FORMAT=json
        SALTANT_BUS__LOGS_MAX_BYTES=1073741824 SALTANT_BUS__RESULTS_MAX_BYTES=1073741824)
    # The scheduler first: it makes the bus's streams and buckets, which the others use.
    hosts_spawn "$dir/scheduler.log" "${common[@]}" \
        SALTANT_TELEMETRY__LISTEN="127.0.0.1:$((HOSTS_PORT + 1))" "$SALTANT_BIN" scheduler
    wait_for 60 "scheduler" curl -fsS "http://127.0.0.1:$((HOSTS_PORT + 1))/readyz" ||
        { tail -n 5 "$dir/scheduler.log" >&2; die "the scheduler did not become ready"; }
    hosts_spawn "$dir/log-collector.log" "${common[@]}" \
        SALTANT_TELEMETRY__LISTEN="127.0.0.1:$((HOSTS_PORT + 2))" "$SALTANT_BIN" log-collector
    hosts_spawn "$dir/api.log" "${common[@]}" \
        SALTANT_API__LISTEN="127.0.0.1:$HOSTS_PORT" "$SALTANT_BIN" api
    for port in "$HOSTS_PORT" "$((HOSTS_PORT + 2))"; do
        wait_for 60 "service on 127.0.0.1:$port" curl -fsS "http://127.0.0.1:$port/readyz" ||
            { tail -n 5 "$dir"/*.log >&2; die "saltant services did not become ready"; }
    done
    API="http://127.0.0.1:$HOSTS_PORT/api"
}

api_post() { # path json → body (fails unless 201)
    local out code
    out=$(curl -sS -w '\n%{http_code}' -H "Authorization: Token $TOKEN" \
        -H 'Content-Type: application/json' -d "$2" "$API/$1") || die "POST $1 failed"
    code=${out##*$'\n'}
    [ "$code" = 201 ] || die "POST $1: $code ${out%$'\n'*}"
    printf '%s' "${out%$'\n'*}"
}

json_id() { python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

# A type on new queues: prints the queue ids, one a line.
hosts_queues() { # kind(executable|container) type_json queue_names...
    local kind=$1 type_json=$2 ty wl name; shift 2
    ty=$(api_post "${kind}tasktypes/" "$type_json" | json_id)
    wl=$(api_post taskwhitelists/ "{\"name\": \"$kind-wl\", \"whitelisted_${kind}_task_types\": [$ty]}" | json_id)
    for name in "$@"; do
        api_post taskqueues/ "{\"name\": \"$name\", \"whitelists\": [$wl]}" | json_id
    done
    echo "type $ty"
}

# POSTs n instances of a type on a queue (32 at once, one keep-alive client) and waits
# until all are final; prints "instances seconds failed": seconds from the first POST to
# the last instance's recorded finish.
hosts_load() { # kind type queue n deadline_secs
    local kind=$1 ty=$2 queue=$3 n=$4 deadline=$(( SECONDS + $5 )) cfg body t0 done_sql ok final i
    cfg=$(mktemp); body=$(mktemp)
    printf '{"task_type": %s, "task_queue": %s}' "$ty" "$queue" >"$body"
    for ((i = 0; i < n; i++)); do
        printf 'url = "%s"\noutput = "/dev/null"\n' "$API/${kind}taskinstances/"
    done >"$cfg"
    t0=$(now)
    ok=$(curl -sS --no-progress-meter -Z --parallel-max 32 -w '%{http_code}\n' -H "Authorization: Token $TOKEN" \
        -H 'Content-Type: application/json' --data-binary "@$body" -K "$cfg" | grep -c '^201$' || true)
    rm -f "$cfg" "$body"
    [ "$ok" = "$n" ] || die "only $ok of $n instances were created"
    done_sql="SELECT count(*) FROM task_instances WHERE task_queue_id = $queue AND state IN ('successful', 'failed', 'terminated')"
    until [ "$("$PG_BIN/psql" -qtA "$DB_URL" -c "$done_sql")" = "$n" ]; do
        [ $SECONDS -lt $deadline ] || die "instances on queue $queue not final in time"
        sleep 0.25
    done
    final=$("$PG_BIN/psql" -qtA -F ' ' "$DB_URL" -c "SELECT extract(epoch FROM max(datetime_finished)) - $t0, count(*) FILTER (WHERE state <> 'successful') FROM task_instances WHERE task_queue_id = $queue")
    echo "$n $final"
}

rate_of() { awk '{ printf "%.1f", $1 / $2 }' <<<"$1"; }

# --- 1. container throughput on 1, 2, 3 executor hosts --------------------------------

hosts_containers() {
    local dir="$STATE/hosts/containers" n=${SALTANT_BENCH_HOSTS_CONTAINERS:-60}
    local slots=${SALTANT_BENCH_HOSTS_SLOTS:-4} gw i k args addr ids queues ty run
    mkdir -p "$dir/images"
    log "hosts: images"
    "$ROOT/deploy/images" --binary "$SALTANT_BIN" --tag "bench" --only host >/dev/null
    local ctx; ctx=$(mktemp -d)
    cp "$(command -v busybox)" "$ctx/busybox"
    printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n' >"$ctx/Dockerfile"
    DOCKER_BUILDKIT=0 docker build -q --label "$HOSTS_LABEL" -t "$HOSTS_IMAGE" "$ctx" >"$dir/build.log" 2>&1 ||
        { cat "$dir/build.log" >&2; die "building $HOSTS_IMAGE failed"; }
    rm -rf "$ctx"
    docker save -o "$dir/images/busybox.tar" "$HOSTS_IMAGE"

    HOSTS_NET=$HOSTS_RUN
    docker network create --label "$HOSTS_LABEL" "$HOSTS_NET" >/dev/null
    gw=$(docker network inspect -f '{{(index .IPAM.Config 0).Gateway}}' "$HOSTS_NET")
    [ -n "$gw" ] || die "no gateway address on network $HOSTS_NET"

    # NATS on the gateway address (clients), its monitoring port on 127.0.0.1.
    mkdir -p "$dir/nats"
    printf 'listen: "%s:%s"\nhttp: "127.0.0.1:%s"\njetstream { store_dir: "%s" }\n' \
        "$gw" "$((HOSTS_PORT + 10))" "$((HOSTS_PORT + 11))" "$dir/nats/js" >"$dir/nats/nats.conf"
    hosts_spawn "$dir/nats/nats.log" "$NATS_SERVER" -c "$dir/nats/nats.conf"
    wait_for 30 "nats-server ($gw)" curl -fsS "http://127.0.0.1:$((HOSTS_PORT + 11))/healthz?js-enabled-only=true" ||
        die "nats-server did not start"
    local nats_url="nats://$gw:$((HOSTS_PORT + 10))"

    hosts_database "${HOSTS_RUN//-/_}_containers"
    hosts_services "$dir" "$nats_url" 1
    mapfile -t queues < <(hosts_queues container \
        "{\"name\": \"hosts-true\", \"command_to_run\": \"true\", \"container_image\": \"$HOSTS_IMAGE\", \"container_type\": \"docker\"}" \
        hosts-1 hosts-2 hosts-3)
    [ ${#queues[@]} = 4 ] || die "could not create the container type and queues"
    ty=${queues[3]#type }

    # Host k serves hosts-k … hosts-3.
    for k in 1 2 3; do
        args=(executor --slots "$slots")
        for ((i = k; i <= 3; i++)); do args+=(--queue "hosts-$i"); done
        docker run -d --name "$HOSTS_RUN-$k" --hostname "host-$k" --label "$HOSTS_LABEL" \
            --network "$HOSTS_NET" \
            --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
            --security-opt apparmor=unconfined --security-opt systempaths=unconfined \
            -v /sys/fs/cgroup:/sys/fs/cgroup -v "$dir/images:/images:ro" \
            -e SALTANT_NATS_URL="$nats_url" -e RUST_LOG=warn \
            -e SALTANT_TELEMETRY__LISTEN=0.0.0.0:9464 \
            "saltant-host:bench" "${args[@]}" >/dev/null
    done
    for k in 1 2 3; do
        addr=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$HOSTS_NET\").IPAddress}}" "$HOSTS_RUN-$k")
        wait_for 120 "executor host $k ($addr)" curl -fsS "http://$addr:9464/readyz" ||
            { docker logs --tail 20 "$HOSTS_RUN-$k" >&2; die "executor host $k did not become ready"; }
        # The engine's first container is slow (image unpacked by vfs): once, unmeasured.
        docker exec "$HOSTS_RUN-$k" docker run --rm --network none "$HOSTS_IMAGE" true
    done
    ids=$(docker ps -q --filter "label=$HOSTS_LABEL" | wc -l)
    [ "$ids" = 3 ] || die "expected 3 executor host containers, found $ids"

    for k in 1 2 3; do
        run=$(hosts_load container "$ty" "${queues[$((k - 1))]}" "$n" 600)
        read -r _ secs failed <<<"$run"
        [ "$failed" = 0 ] || die "$failed of $n container instances on $k host(s) did not succeed"
        HOSTS_RESULTS+=("containers_hosts_$k $(rate_of "$n $secs") $n $secs")
        printf '  container instances (busybox true), %d executor host(s) × %d slots: %s/s (%d in %.2f s)\n' \
            "$k" "$slots" "$(rate_of "$n $secs")" "$n" "$secs"
    done
    hosts_cleanup
    HOSTS_NET=""
}

# --- 2. no-op throughput: 3-node NATS cluster against one node ---------------------------

hosts_nats() { # nodes run → NATS_RATE
    local nodes=$1 run=$2 dir="$STATE/hosts/nats-$1-$2" i routes="" node_dir client cport hport
    local n=${SALTANT_BENCH_HOSTS_NOOP:-2000} queues ty result secs failed
    mkdir -p "$dir"
    for ((i = 0; i < nodes; i++)); do
        routes+="${routes:+,}nats://127.0.0.1:$((HOSTS_PORT + 30 + i))"
    done
    for ((i = 0; i < nodes; i++)); do
        node_dir="$dir/n$i"; mkdir -p "$node_dir"
        cport=$((HOSTS_PORT + 20 + i)); hport=$((HOSTS_PORT + 40 + i))
        if [ "$nodes" -gt 1 ]; then
            hosts_spawn "$node_dir/nats.log" "$NATS_SERVER" -js -sd "$node_dir/js" -a 127.0.0.1 \
                -p "$cport" -m "$hport" -n "n$i" --cluster_name "$HOSTS_RUN" \
                --cluster "nats://127.0.0.1:$((HOSTS_PORT + 30 + i))" --routes "$routes"
        else
            hosts_spawn "$node_dir/nats.log" "$NATS_SERVER" -js -sd "$node_dir/js" -a 127.0.0.1 \
                -p "$cport" -m "$hport"
        fi
    done
    # /healthz answers ok once JetStream (and, in a cluster, its meta leader) is current.
    for ((i = 0; i < nodes; i++)); do
        wait_for 60 "nats node $i" curl -fsS "http://127.0.0.1:$((HOSTS_PORT + 40 + i))/healthz" ||
            { tail -n 20 "$dir/n$i/nats.log" >&2; die "nats node $i did not become healthy"; }
    done
    # Services name one node: the client learns the cluster's other nodes from it.
    client="nats://127.0.0.1:$((HOSTS_PORT + 20))"

    hosts_database "${HOSTS_RUN//-/_}_nats_${nodes}_$run"
    hosts_services "$dir" "$client" "$nodes"
    mkdir -p "$dir/executor"
    hosts_spawn "$dir/executor.log" env SALTANT_NATS_URL="$client" RUST_LOG=warn SALTANT_LOG_FORMAT=json \
        SALTANT_EXECUTOR__LOGS_DIR="$dir/executor/logs" SALTANT_EXECUTOR__RESULTS_DIR="$dir/executor/results" \
        SALTANT_EXECUTOR__TEMP_DIR="$dir/executor/tmp" SALTANT_EXECUTOR__WORK_DIR="$dir/executor/work" \
        SALTANT_EXECUTOR__DOCKER__ENABLED=false \
        SALTANT_TELEMETRY__LISTEN="127.0.0.1:$((HOSTS_PORT + 3))" "$SALTANT_BIN" executor --slots 8
    wait_for 60 "executor" curl -fsS "http://127.0.0.1:$((HOSTS_PORT + 3))/readyz" ||
        { tail -n 20 "$dir/executor.log" >&2; die "executor did not become ready"; }
    mapfile -t queues < <(hosts_queues executable '{"name": "noop", "command_to_run": "true"}' noop)
    [ ${#queues[@]} = 2 ] || die "could not create the no-op type and queue"
    ty=${queues[1]#type }
    result=$(hosts_load executable "$ty" "${queues[0]}" "$n" 600)
    read -r _ secs failed <<<"$result"
    [ "$failed" = 0 ] || die "$failed of $n no-op instances did not succeed"
    hosts_stop_processes
    hosts_cleanup
    NATS_RATE=$(rate_of "$n $secs")
    printf '  no-op instances, NATS %d node(s), bus.replicas=%d (run %d): %s/s (%d in %.2f s)\n' \
        "$nodes" "$nodes" "$run" "$NATS_RATE" "$n" "$secs"
}

bench_hosts() { # saltant binary
    SALTANT_BIN=$1
    HOSTS_PORT=${SALTANT_BENCH_HOSTS_PORT:-36000}
    local a b c d mean3 mean1
    rm -rf "$STATE/hosts"
    echo
    echo "== hosts: container throughput on 1, 2, 3 executor hosts (one machine, $(nproc) cores)"
    hosts_containers
    echo
    echo "== hosts: no-op throughput, NATS 3-node cluster (bus.replicas=3) against one node"
    hosts_nats 3 1; a=$NATS_RATE
    hosts_nats 1 1; b=$NATS_RATE
    hosts_nats 1 2; c=$NATS_RATE
    hosts_nats 3 2; d=$NATS_RATE
    mean3=$(awk '{ printf "%.1f", ($1 + $2) / 2 }' <<<"$a $d")
    mean1=$(awk '{ printf "%.1f", ($1 + $2) / 2 }' <<<"$b $c")
    HOSTS_RESULTS+=("noop_nats_3 $mean3 $a $d" "noop_nats_1 $mean1 $b $c")
    printf '  no-op, mean of two runs: 3-node cluster %s/s, one node %s/s (%s%%)\n' "$mean3" "$mean1" \
        "$(awk '{ printf "%+.0f", ($1 / $2 - 1) * 100 }' <<<"$mean3 $mean1")"
    printf '%s\n' "${HOSTS_RESULTS[@]}" | python3 -c '
import json, os, sys
rows = [line.split() for line in sys.stdin if line.strip()]
out = {r[0]: {"per_second": float(r[1]), "raw": r[2:]} for r in rows}
out["machine"] = {"cores": os.cpu_count()}
json.dump(out, open(sys.argv[1], "w"), indent=2)' "$STATE/hosts.json"
    echo "JSON: $STATE/hosts.json"
}
