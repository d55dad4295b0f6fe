/*
 * test_ca_index.c - the local CA's records of issued and revoked certificates, for both
 * backends: Redis (a real redis-server: a cluster's records) and the file (offline). What is
 * recorded is found again; an unknown serial cannot be revoked; the first revocation stands; two
 * handles (two machines, or two processes sharing a folder) see each other's records; threads
 * share one handle; the CRL number only grows. Redis alone: the key layout operators and the
 * test scripts rely on, no record expires, a repeated record, connections Redis dropped, and a
 * Redis that is down, hangs or wants a password: a retryable error naming it, never a crash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <pthread.h>

#include "ca_index.h"
/* The fixture's event-loop helpers serve the async tests; these calls block. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "redis_fixture.h"
#pragma GCC diagnostic pop

#define NOT_AFTER ((time_t)1700000000) /* 2023-11-14 22:13:20 UTC */
#define NOT_AFTER_TEXT "20231114221320Z"
#define LATER ((time_t)1700003600)
#define LATER_TEXT "20231114231320Z"

typedef struct backend {
    bool redis;
} backend_t;

static backend_t use_redis = {true};
static backend_t use_file = {false};

/* One test's world: a backend, a temp dir for the file backend, handle a (and b, a second
 * machine or process), and for Redis an admin connection that looks at the keys. */
typedef struct fixture {
    bool redis;
    char dir[64];
    pc_ca_index_t *a, *b;
    redisContext *admin;
} fixture_t;

static pc_ca_index_t *open_named(fixture_t *fx, const char *name, unsigned port,
                                 unsigned timeout_ms, const char *password)
{
    pc_ca_index_t *idx = NULL;
    pc_diag_t diag = {.msg = ""};
    pc_err_t err;
    if (fx->redis) {
        pc_redis_config_t cfg = {.host = "127.0.0.1",
                                 .port = (int)port,
                                 .password = password,
                                 .command_timeout_ms = timeout_ms};
        err = pc_ca_index_open_redis(name, &cfg, &idx, &diag);
    } else {
        err = pc_ca_index_open_file(fx->dir, &idx, &diag);
    }
    if (err != PC_OK)
        fail_msg("open: %s", diag.msg);
    return idx;
}

static pc_ca_index_t *open_idx(fixture_t *fx)
{
    return open_named(fx, "local", (unsigned)fixture_redis.port, 2000, NULL);
}

static redisReply *admin(fixture_t *fx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *reply = redisvCommand(fx->admin, fmt, ap);
    va_end(ap);
    if (reply == NULL)
        fail_msg("admin connection: %s", fx->admin->errstr);
    return reply;
}

static long long admin_int(fixture_t *fx, const char *fmt, const char *arg)
{
    redisReply *reply = admin(fx, fmt, arg);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

/* admin_str returns the string reply (caller frees) or NULL for nil. */
static char *admin_str(fixture_t *fx, const char *fmt, const char *a1, const char *a2)
{
    redisReply *reply = admin(fx, fmt, a1, a2);
    char *s = reply->type == REDIS_REPLY_STRING ? strdup(reply->str) : NULL;
    if (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL)
        fail_msg("unexpected reply type %d", reply->type);
    freeReplyObject(reply);
    return s;
}

static int setup(void **state)
{
    const backend_t *backend = *state;
    fixture_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->redis = backend->redis;
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/pc_test_ca_index.XXXXXX");
    if (mkdtemp(fx->dir) == NULL)
        return -1;
    *state = fx;
    if (fx->redis) {
        if (fixture_revive(NULL) != 0)
            return -1;
        fx->admin = redisConnect("127.0.0.1", fixture_redis.port);
        if (fx->admin == NULL || fx->admin->err != 0)
            return -1;
        freeReplyObject(redisCommand(fx->admin, "FLUSHALL"));
    }
    fx->a = open_idx(fx);
    return 0;
}

static int teardown(void **state)
{
    fixture_t *fx = *state;
    char path[128];
    pc_ca_index_free(fx->a);
    pc_ca_index_free(fx->b);
    if (fx->admin != NULL) {
        freeReplyObject(redisCommand(fx->admin, "CONFIG SET requirepass %s", ""));
        redisFree(fx->admin);
    }
    snprintf(path, sizeof(path), "%s/index.txt", fx->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/crlnumber", fx->dir);
    unlink(path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

static void add(pc_ca_index_t *idx, const char *serial, const char *request_id)
{
    pc_diag_t diag = {.msg = ""};
    pc_err_t err =
        pc_ca_index_add_issued(idx, serial, NOT_AFTER, request_id, "CN=alice,O=Contoso", &diag);
    if (err != PC_OK)
        fail_msg("add %s: %s", serial, diag.msg);
}

static size_t find(pc_ca_index_t *idx, const char *request_id, pc_ca_serial_t **out)
{
    size_t count = 99;
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = pc_ca_index_find_issued(idx, request_id, out, &count, &diag);
    if (err != PC_OK)
        fail_msg("find %s: %s", request_id, diag.msg);
    if (count == 0)
        assert_null(*out);
    return count;
}

static pc_ca_index_revoked_t *list(pc_ca_index_t *idx, size_t *count)
{
    pc_ca_index_revoked_t *items = NULL;
    pc_diag_t diag = {.msg = ""};
    pc_err_t err = pc_ca_index_list_revoked(idx, &items, count, &diag);
    if (err != PC_OK)
        fail_msg("list: %s", diag.msg);
    if (*count == 0)
        assert_null(items);
    return items;
}

static uint64_t crl_number(pc_ca_index_t *idx)
{
    uint64_t n = 0;
    pc_diag_t diag = {.msg = ""};
    if (pc_ca_index_next_crl_number(idx, &n, &diag) != PC_OK)
        fail_msg("crl number: %s", diag.msg);
    return n;
}

/* ---- both backends ------------------------------------------------------------------------ */

static void test_add_and_find(void **state)
{
    fixture_t *fx = *state;
    pc_ca_serial_t *found = NULL;

    add(fx->a, "0A1B", "r-1");
    add(fx->a, "0C2D", "r-2");
    add(fx->a, "0E3F", "r-1");
    add(fx->a, "1234", NULL);

    assert_int_equal(find(fx->a, "r-1", &found), 2);
    assert_string_equal(found[0].hex, "0A1B"); /* oldest first */
    assert_string_equal(found[1].hex, "0E3F");
    free(found);
    assert_int_equal(find(fx->a, "r-2", &found), 1);
    assert_string_equal(found[0].hex, "0C2D");
    free(found);
    assert_int_equal(find(fx->a, "r-3", &found), 0);
    assert_int_equal(find(fx->a, "r", &found), 0); /* a prefix of an id is another id */

    size_t count = 99;
    pc_ca_index_revoked_t *revoked = list(fx->a, &count);
    assert_int_equal(count, 0);
    free(revoked);
}

static void test_revoke_first_wins(void **state)
{
    fixture_t *fx = *state;
    size_t count = 0;

    assert_int_equal(pc_ca_index_revoke(fx->a, "ABCDEF", 1, NOT_AFTER, NULL), PC_ERR_NOT_FOUND);
    add(fx->a, "0A1B", "r-1");
    add(fx->a, "0C2D", "r-1");
    assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 1, NOT_AFTER, NULL), PC_OK);
    /* again, later, for another reason: PC_OK, and the first time and reason stand */
    assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 4, LATER, NULL), PC_OK);
    assert_int_equal(pc_ca_index_revoke(fx->a, "ABCDEF", 1, NOT_AFTER, NULL), PC_ERR_NOT_FOUND);

    pc_ca_index_revoked_t *revoked = list(fx->a, &count);
    assert_int_equal(count, 1);
    assert_string_equal(revoked[0].serial_hex, "0A1B");
    assert_string_equal(revoked[0].revoked_at, NOT_AFTER_TEXT);
    assert_int_equal(revoked[0].reason, 1);
    free(revoked);
}

static pc_ca_index_status_t status_of(pc_ca_index_t *idx, const char *serial)
{
    pc_ca_index_status_t st = {.state = PC_CA_INDEX_GOOD, .reason = 99};
    pc_diag_t diag = {.msg = ""};
    if (pc_ca_index_status(idx, serial, &st, &diag) != PC_OK)
        fail_msg("status %s: %s", serial, diag.msg);
    return st;
}

/* What an OCSP responder asks: never issued, issued, revoked with the first time and reason. */
static void test_status(void **state)
{
    fixture_t *fx = *state;

    assert_int_equal(status_of(fx->a, "0A1B").state, PC_CA_INDEX_UNKNOWN);
    add(fx->a, "0A1B", "r-1");
    add(fx->a, "0C2D", "r-1");
    assert_int_equal(status_of(fx->a, "0A1B").state, PC_CA_INDEX_GOOD);
    assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 1, NOT_AFTER, NULL), PC_OK);
    assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 4, LATER, NULL), PC_OK);
    pc_ca_index_status_t st = status_of(fx->a, "0A1B");
    assert_int_equal(st.state, PC_CA_INDEX_REVOKED);
    assert_string_equal(st.revoked_at, NOT_AFTER_TEXT);
    assert_int_equal(st.reason, 1);
    assert_int_equal(status_of(fx->a, "0C2D").state, PC_CA_INDEX_GOOD);
    assert_int_equal(status_of(fx->a, "0A1").state, PC_CA_INDEX_UNKNOWN); /* a prefix */

    /* another machine sees the same */
    fx->b = open_idx(fx);
    assert_int_equal(status_of(fx->b, "0A1B").state, PC_CA_INDEX_REVOKED);
    assert_int_equal(status_of(fx->b, "0C2D").state, PC_CA_INDEX_GOOD);
}

static int cmp_revoked(const void *a, const void *b)
{
    return strcmp(((const pc_ca_index_revoked_t *)a)->serial_hex,
                  ((const pc_ca_index_revoked_t *)b)->serial_hex);
}

/* Enough revocations that Redis hands them out in several HSCAN steps. */
static void test_many_revoked(void **state)
{
    fixture_t *fx = *state;
    size_t n = fx->redis ? 2500 : 60, count = 0;
    char serial[64];

    for (size_t i = 0; i < n; i++) {
        snprintf(serial, sizeof(serial), "5E%06zX", i);
        add(fx->a, serial, NULL);
        assert_int_equal(pc_ca_index_revoke(fx->a, serial, i % 2 ? 1 : 4, LATER, NULL), PC_OK);
    }
    add(fx->a, "0A1B", NULL); /* not revoked: not listed */
    pc_ca_index_revoked_t *revoked = list(fx->a, &count);
    assert_int_equal(count, n);
    qsort(revoked, count, sizeof(*revoked), cmp_revoked);
    for (size_t i = 0; i < n; i++) {
        snprintf(serial, sizeof(serial), "5E%06zX", i);
        assert_string_equal(revoked[i].serial_hex, serial);
        assert_string_equal(revoked[i].revoked_at, LATER_TEXT);
        assert_int_equal(revoked[i].reason, i % 2 ? 1 : 4);
    }
    free(revoked);
}

static void test_crl_number_grows(void **state)
{
    fixture_t *fx = *state;
    fx->b = open_idx(fx);
    assert_int_equal(crl_number(fx->a), 1);
    assert_int_equal(crl_number(fx->a), 2);
    assert_int_equal(crl_number(fx->b), 3);
    assert_int_equal(crl_number(fx->a), 4);
    pc_ca_index_free(fx->a);
    fx->a = open_idx(fx); /* a restart */
    assert_int_equal(crl_number(fx->a), 5);
}

/* Two handles on the same records: two machines with Redis, two processes sharing a folder. */
static void test_two_handles_share_records(void **state)
{
    fixture_t *fx = *state;
    pc_ca_serial_t *found = NULL;
    size_t count = 0;
    fx->b = open_idx(fx);

    add(fx->a, "0A1B", "r-1");
    assert_int_equal(find(fx->b, "r-1", &found), 1);
    assert_string_equal(found[0].hex, "0A1B");
    free(found);
    assert_int_equal(pc_ca_index_revoke(fx->b, "0A1B", 3, NOT_AFTER, NULL), PC_OK);
    assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 5, LATER, NULL), PC_OK);
    pc_ca_index_revoked_t *revoked = list(fx->a, &count);
    assert_int_equal(count, 1);
    assert_int_equal(revoked[0].reason, 3); /* b's, the first */
    free(revoked);
    assert_int_equal(pc_ca_index_revoke(fx->a, "0C2D", 1, LATER, NULL), PC_ERR_NOT_FOUND);
    add(fx->b, "0C2D", "r-1");
    assert_int_equal(pc_ca_index_revoke(fx->a, "0C2D", 1, LATER, NULL), PC_OK);
    assert_int_equal(find(fx->a, "r-1", &found), 2);
    assert_string_equal(found[1].hex, "0C2D");
    free(found);
}

typedef struct thread_arg {
    pc_ca_index_t *idx;
    int id;
    int failures;
} thread_arg_t;

static void *add_many(void *p)
{
    thread_arg_t *t = p;
    char serial[32], request_id[32];
    snprintf(request_id, sizeof(request_id), "thr-%d", t->id);
    for (int i = 0; i < 25; i++) {
        snprintf(serial, sizeof(serial), "7%d%04X", t->id, i);
        if (pc_ca_index_add_issued(t->idx, serial, NOT_AFTER, request_id, "CN=t", NULL) != PC_OK ||
            (i % 5 == 0 && pc_ca_index_revoke(t->idx, serial, 1, LATER, NULL) != PC_OK))
            t->failures++;
    }
    return NULL;
}

/* Pool threads share one handle. */
static void test_threads_share_handle(void **state)
{
    fixture_t *fx = *state;
    thread_arg_t args[4];
    pthread_t threads[4];
    size_t count = 0;

    for (int t = 0; t < 4; t++) {
        args[t] = (thread_arg_t){.idx = fx->a, .id = t};
        assert_int_equal(pthread_create(&threads[t], NULL, add_many, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        char request_id[32], serial[32];
        pc_ca_serial_t *found = NULL;
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(args[t].failures, 0);
        snprintf(request_id, sizeof(request_id), "thr-%d", t);
        assert_int_equal(find(fx->a, request_id, &found), 25);
        for (int i = 0; i < 25; i++) {
            snprintf(serial, sizeof(serial), "7%d%04X", t, i);
            assert_string_equal(found[i].hex, serial);
        }
        free(found);
    }
    free(list(fx->a, &count));
    assert_int_equal(count, 20);
}

/* ---- Redis alone -------------------------------------------------------------------------- */

/* The layout documented in ca_index_redis.c, which operators and tests/lib/cluster.sh read. */
static void test_redis_key_layout(void **state)
{
    fixture_t *fx = *state;
    char *s;

    add(fx->a, "0A1B", "r-1");
    const char *cert = "pc:ca:{local}:cert:0A1B";
    assert_string_equal(s = admin_str(fx, "HGET %s %s", cert, "subject"), "CN=alice,O=Contoso");
    free(s);
    assert_string_equal(s = admin_str(fx, "HGET %s %s", cert, "request_id"), "r-1");
    free(s);
    assert_string_equal(s = admin_str(fx, "HGET %s %s", cert, "not_after"), NOT_AFTER_TEXT);
    free(s);
    s = admin_str(fx, "HGET %s %s", cert, "issued_at");
    assert_true(s != NULL && strlen(s) == 15 && s[14] == 'Z');
    free(s);
    assert_null(admin_str(fx, "HGET %s %s", cert, "revoked_at"));
    s = admin_str(fx, "ZSCORE %s %s", "pc:ca:{local}:issued", "0A1B");
    assert_non_null(s);
    assert_true(llabs(strtoll(s, NULL, 10) - (long long)time(NULL)) < 60);
    free(s);
    assert_int_equal(admin_int(fx, "ZCARD %s", "pc:ca:{local}:issued"), 1);
    assert_string_equal(s = admin_str(fx, "LINDEX %s %s", "pc:ca:{local}:req:r-1", "0"), "0A1B");
    free(s);

    assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 4, LATER, NULL), PC_OK);
    assert_string_equal(s = admin_str(fx, "HGET %s %s", "pc:ca:{local}:revoked", "0A1B"),
                        LATER_TEXT " 4");
    free(s);
    assert_string_equal(s = admin_str(fx, "HGET %s %s", cert, "revoked_at"), LATER_TEXT);
    free(s);
    assert_string_equal(s = admin_str(fx, "HGET %s %s", cert, "reason"), "4");
    free(s);
    assert_int_equal(crl_number(fx->a), 1);
    assert_string_equal(s = admin_str(fx, "GET %s", "pc:ca:{local}:crlnumber", NULL), "1");
    free(s);

    /* the CA's database: nothing expires */
    const char *keys[] = {cert, "pc:ca:{local}:issued", "pc:ca:{local}:req:r-1",
                          "pc:ca:{local}:revoked", "pc:ca:{local}:crlnumber"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_int_equal(admin_int(fx, "TTL %s", keys[i]), -1);
    assert_int_equal(admin_int(fx, "DBSIZE", NULL), 5);

    /* another CA's records are its own */
    pc_ca_serial_t *found = NULL;
    fx->b = open_named(fx, "other", (unsigned)fixture_redis.port, 2000, NULL);
    assert_int_equal(find(fx->b, "r-1", &found), 0);
    assert_int_equal(pc_ca_index_revoke(fx->b, "0A1B", 1, LATER, NULL), PC_ERR_NOT_FOUND);
    assert_int_equal(crl_number(fx->b), 1);
}

/* A record sent again (its first answer lost with a dropped connection) is kept once. */
static void test_redis_repeated_add(void **state)
{
    fixture_t *fx = *state;
    pc_ca_serial_t *found = NULL;
    add(fx->a, "0A1B", "r-1");
    add(fx->a, "0A1B", "r-1");
    assert_int_equal(find(fx->a, "r-1", &found), 1);
    free(found);
    assert_int_equal(admin_int(fx, "ZCARD %s", "pc:ca:{local}:issued"), 1);
}

/* Redis closing every connection (a restart, a failover, a proxy) costs no call. */
static void test_redis_dropped_connections(void **state)
{
    fixture_t *fx = *state;
    pc_ca_serial_t *found = NULL;
    size_t count = 0;

    add(fx->a, "0A1B", "r-1");
    for (int round = 0; round < 3; round++) {
        assert_true(admin_int(fx, "CLIENT KILL TYPE %s SKIPME yes", "normal") >= 1);
        switch (round) {
        case 0:
            assert_int_equal(find(fx->a, "r-1", &found), 1);
            free(found);
            break;
        case 1:
            assert_int_equal(pc_ca_index_revoke(fx->a, "0A1B", 1, LATER, NULL), PC_OK);
            break;
        default:
            free(list(fx->a, &count));
            assert_int_equal(count, 1);
        }
    }
}

static void assert_dependency(pc_err_t err, const pc_diag_t *diag, const char *needle)
{
    assert_int_equal(err, PC_ERR_DEPENDENCY);
    assert_true(pc_err_retryable(err));
    if (strstr(diag->msg, needle) == NULL || strstr(diag->msg, "CA \"local\"") == NULL)
        fail_msg("diag does not name \"%s\" and the CA: %s", needle, diag->msg);
}

static void test_redis_down(void **state)
{
    fixture_t *fx = *state;
    int port = fixture_free_port();
    char where[64];
    pc_diag_t diag = {.msg = ""};
    pc_ca_serial_t *found = NULL;
    pc_ca_index_revoked_t *revoked = NULL;
    size_t count = 99;
    uint64_t number = 0;

    snprintf(where, sizeof(where), "Redis at 127.0.0.1:%d", port);
    fx->b = open_named(fx, "local", (unsigned)port, 500, NULL); /* opens: Redis is not asked yet */
    assert_dependency(pc_ca_index_add_issued(fx->b, "0A1B", NOT_AFTER, "r-1", "CN=a", &diag), &diag,
                      where);
    assert_non_null(strstr(diag.msg, "0A1B"));
    /* unknown is not the answer while Redis cannot be asked */
    assert_dependency(pc_ca_index_revoke(fx->b, "0A1B", 1, LATER, &diag), &diag, where);
    assert_dependency(pc_ca_index_find_issued(fx->b, "r-1", &found, &count, &diag), &diag, where);
    assert_null(found);
    assert_int_equal(count, 0);
    count = 99;
    assert_dependency(pc_ca_index_list_revoked(fx->b, &revoked, &count, &diag), &diag, where);
    assert_null(revoked);
    assert_int_equal(count, 0);
    assert_dependency(pc_ca_index_next_crl_number(fx->b, &number, &diag), &diag, where);
}

/* A Redis that stops answering costs a call its timeout, not forever; then it is used again. */
static void test_redis_hangs(void **state)
{
    fixture_t *fx = *state;
    pc_diag_t diag = {.msg = ""};
    uint64_t number = 0;

    fx->b = open_named(fx, "local", (unsigned)fixture_redis.port, 300, NULL);
    assert_int_equal(crl_number(fx->b), 1); /* a pooled connection */
    kill(fixture_redis.pid, SIGSTOP);
    uint64_t t0 = uv_hrtime();
    pc_err_t err = pc_ca_index_next_crl_number(fx->b, &number, &diag);
    uint64_t elapsed = ms_since(t0);
    kill(fixture_redis.pid, SIGCONT);
    assert_dependency(err, &diag, "300 ms");
    assert_true(elapsed < 3000);
    /* the unanswered INCRs may still run when Redis resumes: numbers grow, maybe with gaps */
    assert_true(crl_number(fx->b) > 1);
}

static void test_redis_password(void **state)
{
    fixture_t *fx = *state;
    pc_diag_t diag = {.msg = ""};
    unsigned port = (unsigned)fixture_redis.port;

    freeReplyObject(admin(fx, "CONFIG SET requirepass %s", "s3cret"));
    fx->b = open_named(fx, "local", port, 2000, NULL);
    assert_dependency(pc_ca_index_add_issued(fx->b, "0A1B", NOT_AFTER, NULL, NULL, &diag), &diag,
                      "redis.password");
    pc_ca_index_free(fx->b);
    fx->b = open_named(fx, "local", port, 2000, "wrong");
    assert_dependency(pc_ca_index_add_issued(fx->b, "0A1B", NOT_AFTER, NULL, NULL, &diag), &diag,
                      "redis.password");
    pc_ca_index_free(fx->b);
    fx->b = open_named(fx, "local", port, 2000, "s3cret");
    add(fx->b, "0A1B", NULL);
    assert_int_equal(pc_ca_index_revoke(fx->b, "0A1B", 1, LATER, NULL), PC_OK);
}

/* A revocation someone wrote by hand wrongly stops the CRL rather than vanishing from it. */
static void test_redis_malformed_revocation(void **state)
{
    fixture_t *fx = *state;
    pc_diag_t diag = {.msg = ""};
    pc_ca_index_revoked_t *revoked = NULL;
    size_t count = 0;

    freeReplyObject(admin(fx, "HSET %s %s %s", "pc:ca:{local}:revoked", "0A1B", "yesterday"));
    assert_int_equal(pc_ca_index_list_revoked(fx->a, &revoked, &count, &diag), PC_ERR_CONFLICT);
    assert_null(revoked);
    assert_non_null(strstr(diag.msg, "pc:ca:{local}:revoked"));
    assert_non_null(strstr(diag.msg, "0A1B"));
    assert_non_null(strstr(diag.msg, "yesterday"));
}

#define REDIS(test)                                                                                \
    {                                                                                              \
#test " (redis)", test, setup, teardown, &use_redis                                        \
    }
#define BOTH(test)                                                                                 \
    REDIS(test),                                                                                   \
    {                                                                                              \
#test " (file)", test, setup, teardown, &use_file                                          \
    }

static int group_teardown(void **state)
{
    (void)state;
    fixture_stop(&fixture_redis);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        BOTH(test_add_and_find),
        BOTH(test_revoke_first_wins),
        BOTH(test_status),
        BOTH(test_many_revoked),
        BOTH(test_crl_number_grows),
        BOTH(test_two_handles_share_records),
        BOTH(test_threads_share_handle),
        REDIS(test_redis_key_layout),
        REDIS(test_redis_repeated_add),
        REDIS(test_redis_dropped_connections),
        REDIS(test_redis_down),
        REDIS(test_redis_hangs),
        REDIS(test_redis_password),
        REDIS(test_redis_malformed_revocation),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
