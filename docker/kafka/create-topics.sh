#!/bin/sh
# Creates every topic of proto/topics.json on a real Kafka cluster, with its partition count.
#
#   create-topics.sh CATALOG BOOTSTRAP [REPLICATION_FACTOR]
#
# Idempotent: an existing topic is kept, and grown to the catalog's partition count if it has
# fewer (partitions never shrink). Runs in the apache/kafka image (busybox sh + awk, no jq), as the
# one-shot "topic-init" service of docker-compose.yml. Exits non-zero on the first failure.
set -eu

catalog=${1:?usage: create-topics.sh CATALOG BOOTSTRAP [REPLICATION_FACTOR]}
bootstrap=${2:?usage: create-topics.sh CATALOG BOOTSTRAP [REPLICATION_FACTOR]}
replication=${3:-1}
bin=${KAFKA_BIN:-/opt/kafka/bin}

# Prints "name partitions" per topic. Each topic object holds one "name"; a topic without
# "partitions" gets the catalog's defaults.partitions. Independent of line breaks and key order.
plan=$(awk '
    BEGIN { RS = "\001" }
    {
        s = $0
        gsub(/[\r\n\t]/, " ", s)
        def = 6
        if (match(s, /"defaults"[^}]*"partitions"[ ]*:[ ]*[0-9]+/)) {
            d = substr(s, RSTART, RLENGTH); sub(/.*:[ ]*/, "", d); def = d + 0
        }
        t = index(s, "\"topics\"")
        if (t == 0) { print "error: no \"topics\" in the catalog" > "/dev/stderr"; exit 2 }
        n = split(substr(s, t), parts, /"name"[ ]*:[ ]*"/)
        for (k = 2; k <= n; k++) {
            name = substr(parts[k], 1, index(parts[k], "\"") - 1)
            p = def
            if (match(parts[k], /"partitions"[ ]*:[ ]*[0-9]+/)) {
                v = substr(parts[k], RSTART, RLENGTH); sub(/.*:[ ]*/, "", v); p = v + 0
            }
            print name, p
        }
    }' "$catalog")

[ -n "$plan" ] || { echo "error: no topics found in '$catalog'" >&2; exit 1; }

echo "$plan" | while read -r name partitions; do
    case $name in
        cc.*) ;;
        *) echo "error: unexpected topic name '$name' in '$catalog'" >&2; exit 1 ;;
    esac
    case $partitions in
        ''|*[!0-9]*) echo "error: bad partition count '$partitions' for '$name'" >&2; exit 1 ;;
    esac
    if [ -n "${DRY_RUN:-}" ]; then
        echo "plan: $name partitions=$partitions replication=$replication"
        continue
    fi
    "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$name" --partitions "$partitions" --replication-factor "$replication"
    have=$("$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --describe --topic "$name" |
        sed -n 's/.*PartitionCount:[[:space:]]*\([0-9][0-9]*\).*/\1/p' | head -n 1)
    if [ -n "$have" ] && [ "$have" -lt "$partitions" ]; then
        "$bin/kafka-topics.sh" --bootstrap-server "$bootstrap" --alter --topic "$name" \
            --partitions "$partitions"
        have=$partitions
    fi
    echo "topic: $name partitions=${have:-?}"
done
echo "topics: ready"
