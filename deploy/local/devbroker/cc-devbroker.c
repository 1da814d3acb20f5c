/*
 * cc-devbroker: the Kafka-protocol development broker of the local stack.
 *
 * One small process over librdkafka's mock cluster (rdkafka_mock.h): N brokers
 * (default 3) on random loopback ports, every topic of the catalog
 * (proto/topics.json) created with its partition count (never fewer than
 * DEVBROKER_MIN_PARTITIONS). Once the cluster answers a metadata request with
 * every catalog topic, the bootstrap list is written atomically to
 * --bootstrap-file: the file existing means the broker is ready.
 *
 * The mock does not implement the CreateTopics admin request and auto-creates
 * unknown topics with 4 partitions, so an optional control socket
 * (--control-socket, a unix stream socket) accepts one-line requests:
 *   "create <topic> <partitions>\n" -> "ok\n" | "exists\n" | "error <reason>\n"
 *   "ping\n"                        -> "ok\n"
 *
 * Limits of the mock (librdkafka 2.0.2, not configurable): each partition
 * keeps about 5 MiB or 100,000 produce batches, older batches are dropped;
 * nothing is durable; ports change on every start.
 *
 * Single-threaded on our side: signals arrive through a signalfd, the control
 * socket is served inline; librdkafka runs the cluster on its own threads.
 * SIGTERM/SIGINT/SIGHUP destroy the cluster and exit 0.
 */
#include "cc_log.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEVBROKER_MIN_PARTITIONS 6
#define DEVBROKER_MAX_PARTITIONS 1024
#define DEVBROKER_TOPIC_MAX      249
#define DEVBROKER_READY_MS       10000
#define DEVBROKER_CTL_LINE_MAX   512
#define DEVBROKER_DEFAULT_TOPICS "proto/topics.json"

struct devbroker_opts {
    const char *topics_path;
    const char *bootstrap_file;
    const char *control_path;
    const char *debug;
    int brokers;
    enum cc_log_level level;
};

struct devbroker {
    rd_kafka_t *rk; /* owns the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    int replication;
    int sigfd;
    int ctlfd;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: cc-devbroker [options]\n"
            "\n"
            "Kafka-protocol dev broker (librdkafka mock cluster) for the local stack.\n"
            "\n"
            "  --topics PATH          topic catalog to create (env CC_DEVBROKER_TOPICS,\n"
            "                         default " DEVBROKER_DEFAULT_TOPICS ")\n"
            "  --bootstrap-file PATH  write the bootstrap list here (tmp + rename) once the\n"
            "                         cluster is up; removed at exit (default: stdout only)\n"
            "  --control-socket PATH  unix socket for 'create <topic> <partitions>' and\n"
            "                         'ping' requests (env CC_DEVBROKER_CONTROL, default off)\n"
            "  --brokers N            number of mock brokers, 1..16 (default 3)\n"
            "  --log-level LEVEL      debug, info, warn or error (env CC_LOG_LEVEL,\n"
            "                         default info)\n"
            "  --debug CONTEXTS       librdkafka debug contexts, e.g. mock,protocol\n"
            "  --help                 print this help and exit\n"
            "\n"
            "Every catalog topic gets max(partitions, %d) partitions; topics created by\n"
            "auto-creation get the mock's default of 4. Each partition keeps about 5 MiB;\n"
            "nothing is durable. SIGTERM or SIGINT stops the cluster and exits 0.\n",
            DEVBROKER_MIN_PARTITIONS);
}

/* Parses a decimal int in [min, max]; returns 0 or -EINVAL. */
static int parse_int(const char *text, int min, int max, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max)
        return -EINVAL;
    *out = (int)v;
    return 0;
}

/* Returns 0 to run, 1 when --help was printed, -EINVAL on a bad option. */
static int parse_args(int argc, char **argv, struct devbroker_opts *o)
{
    enum { OPT_TOPICS = 1, OPT_BOOTSTRAP, OPT_CONTROL, OPT_BROKERS, OPT_LEVEL, OPT_DEBUG };
    static const struct option longopts[] = {
        {"topics", required_argument, NULL, OPT_TOPICS},
        {"bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP},
        {"control-socket", required_argument, NULL, OPT_CONTROL},
        {"brokers", required_argument, NULL, OPT_BROKERS},
        {"log-level", required_argument, NULL, OPT_LEVEL},
        {"debug", required_argument, NULL, OPT_DEBUG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *level = getenv("CC_LOG_LEVEL");
    int c;

    o->topics_path = getenv("CC_DEVBROKER_TOPICS");
    if (!o->topics_path || !*o->topics_path)
        o->topics_path = DEVBROKER_DEFAULT_TOPICS;
    o->control_path = getenv("CC_DEVBROKER_CONTROL");
    if (o->control_path && !*o->control_path)
        o->control_path = NULL;
    o->bootstrap_file = NULL;
    o->debug = NULL;
    o->brokers = 3;

    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_TOPICS:
            o->topics_path = optarg;
            break;
        case OPT_BOOTSTRAP:
            o->bootstrap_file = optarg;
            break;
        case OPT_CONTROL:
            o->control_path = optarg;
            break;
        case OPT_BROKERS:
            if (parse_int(optarg, 1, 16, &o->brokers) < 0) {
                fprintf(stderr, "cc-devbroker: invalid --brokers '%s' (1..16)\n", optarg);
                return -EINVAL;
            }
            break;
        case OPT_LEVEL:
            level = optarg;
            break;
        case OPT_DEBUG:
            o->debug = optarg;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -EINVAL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "cc-devbroker: unexpected argument '%s'\n", argv[optind]);
        return -EINVAL;
    }
    o->level = CC_LOG_INFO;
    if (level && *level && cc_log_level_parse(level, &o->level) < 0) {
        fprintf(stderr, "cc-devbroker: invalid log level '%s' (debug, info, warn, error)\n", level);
        return -EINVAL;
    }
    return 0;
}

/* librdkafka log lines (syslog levels) into cc_log; called from librdkafka threads. */
static void rdkafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3)
        CC_ERROR("rdkafka %s: %s", fac, buf);
    else if (level == 4)
        CC_WARN("rdkafka %s: %s", fac, buf);
    else if (level <= 6)
        CC_INFO("rdkafka %s: %s", fac, buf);
    else
        CC_DEBUG("rdkafka %s: %s", fac, buf);
}

/* Creates the rd_kafka_t that owns the mock cluster; 0 or -errno. */
static int cluster_start(struct devbroker *db, const struct devbroker_opts *o)
{
    char errstr[512];
    char n[16];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    snprintf(n, sizeof(n), "%d", o->brokers);
    if (rd_kafka_conf_set(conf, "test.mock.num.brokers", n, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "client.id", "cc-devbroker", errstr, sizeof(errstr)) ||
        (o->debug && rd_kafka_conf_set(conf, "debug", o->debug, errstr, sizeof(errstr)))) {
        CC_ERROR("invalid librdkafka setting: %s", errstr);
        goto destroy_conf;
    }
    rd_kafka_conf_set_log_cb(conf, rdkafka_log_cb);

    db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!db->rk) {
        CC_ERROR("cannot create the mock cluster handle: %s", errstr);
        goto destroy_conf;
    }
    /* conf is owned by db->rk from here on */
    db->mcluster = rd_kafka_handle_mock_cluster(db->rk);
    if (!db->mcluster) {
        CC_ERROR("librdkafka did not create a mock cluster");
        rd_kafka_destroy(db->rk);
        db->rk = NULL;
        return -EIO;
    }
    db->replication = o->brokers < 3 ? o->brokers : 3;
    return 0;

destroy_conf:
    rd_kafka_conf_destroy(conf);
    return -EINVAL;
}

static bool topic_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > DEVBROKER_TOPIC_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/*
 * Creates one topic. Returns 0, -EEXIST when it already exists, -EINVAL for a
 * bad name or count, -EIO for any other mock error.
 */
static int topic_create(struct devbroker *db, const char *name, int partitions)
{
    rd_kafka_resp_err_t err;

    if (!topic_name_valid(name) || partitions < 1 || partitions > DEVBROKER_MAX_PARTITIONS)
        return -EINVAL;
    err = rd_kafka_mock_topic_create(db->mcluster, name, partitions, db->replication);
    if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
        return -EEXIST;
    if (err) {
        CC_ERROR("cannot create topic '%s': %s", name, rd_kafka_err2str(err));
        return -EIO;
    }
    CC_INFO("created topic '%s' with %d partitions", name, partitions);
    return 0;
}

/* The partition count a catalog entry asks for, raised to the minimum. */
static int catalog_partitions(json_t *topic, json_t *defaults)
{
    json_t *p = json_object_get(topic, "partitions");
    json_int_t n = DEVBROKER_MIN_PARTITIONS;

    if (!json_is_integer(p))
        p = json_object_get(defaults, "partitions");
    if (json_is_integer(p))
        n = json_integer_value(p);
    if (n > DEVBROKER_MAX_PARTITIONS)
        return -EINVAL;
    if (n < DEVBROKER_MIN_PARTITIONS) {
        CC_WARN("catalog asks %lld partitions for '%s', using %d", (long long)n,
                json_string_value(json_object_get(topic, "name")), DEVBROKER_MIN_PARTITIONS);
        n = DEVBROKER_MIN_PARTITIONS;
    }
    return (int)n;
}

/* Loads the catalog; returns a new reference to its "topics" array or NULL. */
static json_t *catalog_load(const char *path, json_t **defaults)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    json_t *topics;

    if (!root) {
        CC_ERROR("cannot read topic catalog '%s': %s (line %d)", path, jerr.text, jerr.line);
        return NULL;
    }
    topics = json_object_get(root, "topics");
    if (!json_is_array(topics) || json_array_size(topics) == 0) {
        CC_ERROR("invalid topic catalog '%s': no \"topics\" array", path);
        json_decref(root);
        return NULL;
    }
    *defaults = json_incref(json_object_get(root, "defaults"));
    json_incref(topics);
    json_decref(root);
    return topics;
}

/* Creates every catalog topic; 0 or a negative errno. */
static int catalog_create(struct devbroker *db, json_t *topics, json_t *defaults)
{
    size_t i;
    json_t *t;

    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        int partitions = catalog_partitions(t, defaults);
        int rc;

        if (!name || partitions < 0) {
            CC_ERROR("invalid topic catalog entry %zu: needs a name and 1..%d partitions", i,
                     DEVBROKER_MAX_PARTITIONS);
            return -EINVAL;
        }
        rc = topic_create(db, name, partitions);
        if (rc == -EEXIST) {
            CC_ERROR("invalid topic catalog: topic '%s' listed twice", name);
            return rc;
        }
        if (rc < 0) {
            if (rc == -EINVAL)
                CC_ERROR("invalid topic catalog: bad topic name '%s'", name);
            return rc;
        }
    }
    return 0;
}

static const rd_kafka_metadata_topic_t *metadata_find(const struct rd_kafka_metadata *md,
                                                      const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++) {
        if (!strcmp(md->topics[i].topic, name))
            return &md->topics[i];
    }
    return NULL;
}

/*
 * Asks the cluster, through its own listeners, for the metadata of every
 * topic and checks each catalog topic is there with its partitions: the
 * readiness check done before the bootstrap file is written.
 */
static int catalog_verify(struct devbroker *db, json_t *topics, json_t *defaults)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_resp_err_t err;
    size_t i;
    json_t *t;
    int rc = 0;

    err = rd_kafka_metadata(db->rk, 1, NULL, &md, DEVBROKER_READY_MS);
    if (err) {
        CC_ERROR("mock cluster not answering metadata: %s", rd_kafka_err2str(err));
        return -ETIMEDOUT;
    }
    if (md->broker_cnt < 1) {
        CC_ERROR("mock cluster reports no brokers");
        rc = -EIO;
    }
    json_array_foreach(topics, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        const rd_kafka_metadata_topic_t *mt = metadata_find(md, name);

        if (!mt || mt->err || mt->partition_cnt != catalog_partitions(t, defaults)) {
            CC_ERROR("topic '%s' missing or wrong in the mock cluster's metadata", name);
            rc = -EIO;
        }
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* Writes text + newline to path through a temporary file and rename(2). */
static int file_write_atomic(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    FILE *f;
    int rc = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    f = fopen(tmp, "w");
    if (!f)
        return -errno;
    if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = errno ? -errno : -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Binds and listens on the control socket; returns the fd or -errno. */
static int control_open(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(path); /* a stale socket of a previous run */
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

/* Reads one request line (up to '\n' or EOF) into buf; returns its length or -errno. */
static ssize_t control_read_line(int fd, char *buf, size_t cap)
{
    size_t len = 0;

    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        len += (size_t)n;
        if (memchr(buf, '\n', len))
            break;
    }
    buf[len] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return (ssize_t)len;
}

/* Executes one request line and formats the reply into out. */
static void control_execute(struct devbroker *db, char *line, char *out, size_t cap)
{
    char *save = NULL;
    const char *verb = strtok_r(line, " \t", &save);
    const char *topic, *count;
    int partitions, rc;

    if (verb && !strcmp(verb, "ping") && !strtok_r(NULL, " \t", &save)) {
        snprintf(out, cap, "ok\n");
        return;
    }
    if (!verb || strcmp(verb, "create") != 0) {
        snprintf(out, cap, "error unknown request (expected 'create <topic> <partitions>')\n");
        return;
    }
    topic = strtok_r(NULL, " \t", &save);
    count = strtok_r(NULL, " \t", &save);
    if (!topic || !count || strtok_r(NULL, " \t", &save) ||
        parse_int(count, 1, DEVBROKER_MAX_PARTITIONS, &partitions) < 0) {
        snprintf(out, cap, "error usage: create <topic> <partitions 1..%d>\n",
                 DEVBROKER_MAX_PARTITIONS);
        return;
    }
    rc = topic_create(db, topic, partitions);
    if (rc == 0)
        snprintf(out, cap, "ok\n");
    else if (rc == -EEXIST)
        snprintf(out, cap, "exists\n");
    else if (rc == -EINVAL)
        snprintf(out, cap, "error invalid topic name\n");
    else
        snprintf(out, cap, "error mock cluster refused the topic\n");
}

/* Serves one control connection; a slow or broken client cannot block us > 1 s. */
static void control_serve(struct devbroker *db)
{
    struct timeval tv = {.tv_sec = 1};
    char line[DEVBROKER_CTL_LINE_MAX];
    char reply[128];
    ssize_t n;
    int fd = accept4(db->ctlfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
            CC_WARN("control socket accept failed: %s", strerror(errno));
        return;
    }
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    n = control_read_line(fd, line, sizeof(line));
    if (n <= 0) {
        close(fd);
        return;
    }
    control_execute(db, line, reply, sizeof(reply));
    if (send(fd, reply, strlen(reply), MSG_NOSIGNAL) < 0)
        CC_WARN("control socket reply failed: %s", strerror(errno));
    close(fd);
}

/* Waits for a stop signal, serving control requests meanwhile. */
static int serve(struct devbroker *db)
{
    struct pollfd pfd[2] = {{.fd = db->sigfd, .events = POLLIN},
                            {.fd = db->ctlfd, .events = POLLIN}};
    nfds_t nfds = db->ctlfd >= 0 ? 2 : 1;

    for (;;) {
        struct signalfd_siginfo si;

        if (poll(pfd, nfds, -1) < 0) {
            if (errno == EINTR)
                continue;
            CC_ERROR("poll failed: %s", strerror(errno));
            return -errno;
        }
        if (nfds == 2 && (pfd[1].revents & POLLIN))
            control_serve(db);
        if (pfd[0].revents & POLLIN) {
            if (read(db->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                CC_INFO("received signal %u, stopping", si.ssi_signo);
                return 0;
            }
        }
    }
}

/* Blocks the stop signals in every thread (call before librdkafka starts any) -> signalfd. */
static int signals_open(void)
{
    sigset_t set;
    int fd;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -EINVAL;
    signal(SIGPIPE, SIG_IGN);
    fd = signalfd(-1, &set, SFD_CLOEXEC);
    return fd < 0 ? -errno : fd;
}

int main(int argc, char **argv)
{
    struct devbroker_opts opts;
    struct devbroker db = {.sigfd = -1, .ctlfd = -1};
    json_t *topics, *defaults = NULL;
    const char *bootstraps;
    int rc = parse_args(argc, argv, &opts);

    if (rc != 0)
        return rc > 0 ? 0 : 2;
    cc_log_init("devbroker", opts.level);

    db.sigfd = signals_open();
    if (db.sigfd < 0) {
        CC_ERROR("cannot set up signal handling: %s", strerror(-db.sigfd));
        return 1;
    }
    topics = catalog_load(opts.topics_path, &defaults);
    if (!topics)
        goto close_signals;
    if (opts.control_path) {
        db.ctlfd = control_open(opts.control_path);
        if (db.ctlfd < 0) {
            CC_ERROR("cannot listen on control socket '%s': %s", opts.control_path,
                     strerror(-db.ctlfd));
            goto free_catalog;
        }
    }
    if (cluster_start(&db, &opts) < 0)
        goto close_control;
    if (catalog_create(&db, topics, defaults) < 0 || catalog_verify(&db, topics, defaults) < 0)
        goto destroy_cluster;

    bootstraps = rd_kafka_mock_cluster_bootstraps(db.mcluster);
    if (opts.bootstrap_file) {
        rc = file_write_atomic(opts.bootstrap_file, bootstraps);
        if (rc < 0) {
            CC_ERROR("cannot write bootstrap file '%s': %s", opts.bootstrap_file, strerror(-rc));
            goto destroy_cluster;
        }
    }
    CC_INFO("ready: %d brokers at '%s', %zu catalog topics from '%s'", opts.brokers, bootstraps,
            json_array_size(topics), opts.topics_path);
    printf("%s\n", bootstraps);
    fflush(stdout);

    rc = serve(&db);
    if (opts.bootstrap_file)
        unlink(opts.bootstrap_file);
    if (db.ctlfd >= 0) {
        close(db.ctlfd);
        unlink(opts.control_path);
    }
    rd_kafka_destroy(db.rk); /* destroys the mock cluster it owns */
    json_decref(defaults);
    json_decref(topics);
    close(db.sigfd);
    CC_INFO("stopped");
    return rc < 0 ? 1 : 0;

destroy_cluster:
    rd_kafka_destroy(db.rk);
close_control:
    if (db.ctlfd >= 0) {
        close(db.ctlfd);
        unlink(opts.control_path);
    }
free_catalog:
    json_decref(defaults);
    json_decref(topics);
close_signals:
    close(db.sigfd);
    return 1;
}
