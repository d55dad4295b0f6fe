/*
 * redis.c - one Redis connection on the worker's libuv loop (hiredis 0.14 async API + its libuv
 * adapter), with what hiredis does not do for us: per-command timeouts, a handshake (AUTH or
 * PING) before the connection counts as ready, reconnect with exponential backoff and jitter,
 * non-blocking name resolution, and Lua scripts by EVALSHA with an EVAL fallback.
 * With Redis Sentinel (redis_target.h), each connection attempt first asks the sentinels for
 * the master on a pool thread (their answer, then getaddrinfo, are blocking calls), and the
 * handshake adds ROLE: a server that is not the master is dropped and the sentinels asked
 * again after the backoff. A READONLY error (the master demoted under us) drops the
 * connection the same way. Loop thread only.
 *
 * Lifetimes: every command is a cmd_t that owns a uv_timer; it is freed in the timer's close
 * callback once the caller has been answered and hiredis has let go of it (hiredis calls every
 * reply callback exactly once: with the reply, or with NULL when the context is freed). The
 * pc_redis_t is freed in the close callback of its own timer, after all commands are gone, so
 * uv_loop_close() returns 0 once the loop has run after pc_redis_close.
 *
 * hiredis rules followed here: the context is freed by us only from the loop (timer callbacks,
 * pc_redis_* calls) or from a reply callback (where hiredis defers the free); never from the
 * connect or disconnect callback, where 0.14 would use it after we return. No user code runs
 * inside those two callbacks except the state callback from the disconnect callback, after the
 * context is already detached from us.
 */
#include "redis.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <openssl/evp.h>

#include "text.h"

typedef enum conn_state {
    CONN_WAITING,    /* down; conn_timer will start the next attempt */
    CONN_RESOLVING,  /* uv_getaddrinfo, or asking the sentinels, in flight */
    CONN_CONNECTING, /* TCP connect in flight; conn_timer bounds it */
    CONN_HANDSHAKE,  /* connected; AUTH or PING (then ROLE) in flight */
    CONN_READY,      /* commands are sent */
} conn_state_t;

typedef struct cmd cmd_t;

struct pc_redis {
    uv_loop_t *loop;
    pc_redis_target_t *target;
    char host[PC_REDIS_HOST_MAX]; /* where we connect: the configured host, or the master the
                                   * sentinels named last */
    int port;
    unsigned command_timeout_ms;
    unsigned reconnect_min_ms;
    unsigned reconnect_max_ms;

    redisAsyncContext *ac; /* NULL when no context is ours */
    conn_state_t state;
    bool up_reported; /* what the state callback was last told */
    bool refused;     /* the last login (AUTH or ROLE) was answered with an error */
    unsigned attempt; /* failed attempts since the last ready connection */
    uint64_t rng;
    uv_timer_t conn_timer; /* reconnect delay and connect timeout; closed last */
    uv_getaddrinfo_t resolve;
    bool resolving;
    uv_work_t discover; /* asking the sentinels (locate + resolve), on a pool thread */
    bool discovering;
    char discovered_ip[64]; /* the pool thread's answer, read by the loop in discover_done */
    char discovered_host[PC_REDIS_HOST_MAX];
    int discovered_port;
    pc_diag_t discover_error;
    pc_diag_t last_error;

    cmd_t *cmds; /* every command not yet freed */
    size_t ncmds;

    void (*state_fn)(void *arg, bool up);
    void *state_arg;

    bool closing;
    void (*closed_fn)(void *arg);
    void *closed_arg;
};

struct cmd {
    cmd_t *prev, *next;
    pc_redis_t *redis;
    redisAsyncContext *ac; /* the context that holds us, while in_hiredis */
    uv_timer_t timer;
    pc_redis_reply_fn cb;
    void *arg;
    char name[24]; /* command name, for diagnostics */
    bool in_hiredis;
    bool answered;
};

static void connect_start(pc_redis_t *redis);
static pc_err_t send_cmd(pc_redis_t *redis, pc_redis_reply_fn cb, void *arg, int argc,
                         const char **argv, const size_t *argvlen, bool handshake);
static void handshake_done(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag);

/* ---- state and reconnect ---------------------------------------------------------------- */

static void report_state(pc_redis_t *redis, bool up)
{
    if (redis->up_reported == up)
        return;
    redis->up_reported = up;
    if (redis->state_fn != NULL)
        redis->state_fn(redis->state_arg, up);
}

static uint64_t next_random(pc_redis_t *redis)
{
    /* xorshift64*: jitter only needs to spread workers apart, not to be unpredictable */
    uint64_t x = redis->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    redis->rng = x;
    return x * 2685821657736338717ULL;
}

static uint64_t backoff_ms(pc_redis_t *redis)
{
    uint64_t delay = redis->reconnect_min_ms;
    for (unsigned i = 0; i < redis->attempt && delay < redis->reconnect_max_ms; i++)
        delay *= 2;
    if (delay > redis->reconnect_max_ms)
        delay = redis->reconnect_max_ms;
    if (redis->attempt < 64)
        redis->attempt++;
    /* "equal jitter": half fixed, half random, so a restarted Redis is not stampeded */
    uint64_t half = delay / 2;
    return half + next_random(redis) % (delay - half + 1);
}

static void close_final(uv_handle_t *handle)
{
    pc_redis_t *redis = handle->data;
    void (*closed)(void *) = redis->closed_fn;
    void *arg = redis->closed_arg;

    pc_redis_target_free(redis->target);
    free(redis);
    if (closed != NULL)
        closed(arg);
}

static void maybe_finish(pc_redis_t *redis)
{
    if (!redis->closing || redis->ac != NULL || redis->resolving || redis->discovering ||
        redis->ncmds != 0)
        return;
    if (!uv_is_closing((uv_handle_t *)&redis->conn_timer))
        uv_close((uv_handle_t *)&redis->conn_timer, close_final);
}

static void on_conn_timer(uv_timer_t *timer);

/* connection_lost: the context is gone (already detached from redis); go down and retry. */
static void connection_lost(pc_redis_t *redis)
{
    redis->state = CONN_WAITING;
    report_state(redis, false);
    if (redis->closing) {
        maybe_finish(redis);
        return;
    }
    uv_timer_start(&redis->conn_timer, on_conn_timer, backoff_ms(redis), 0);
}

/* drop_connection frees our context (from the loop or a reply callback, never from the
 * connect/disconnect callback); pending commands get their NULL reply from hiredis. */
static void drop_connection(pc_redis_t *redis)
{
    redisAsyncContext *ac = redis->ac;

    if (ac == NULL)
        return;
    redis->ac = NULL;
    ac->data = NULL; /* our connect/disconnect callbacks ignore a context we let go */
    uv_timer_stop(&redis->conn_timer);
    redisAsyncFree(ac);
    connection_lost(redis);
}

/* ---- connecting --------------------------------------------------------------------------- */

static void on_connect(const redisAsyncContext *ac, int status)
{
    pc_redis_t *redis = ac->data;
    const char *argv[3] = {"PING", NULL, NULL};
    size_t argvlen[3] = {4, 0, 0};
    int argc = 1;

    if (redis == NULL)
        return;
    uv_timer_stop(&redis->conn_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback returns */
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY, "cannot connect to Redis at %s:%d: %s",
                redis->host, redis->port, ac->errstr != NULL ? ac->errstr : "unknown error");
        redis->ac = NULL;
        connection_lost(redis);
        return;
    }
    if (pc_redis_target_auth(redis->target, argv, argvlen) > 0)
        argc = pc_redis_target_auth(redis->target, argv, argvlen);
    else if (pc_redis_target_sentinel(redis->target)) {
        argv[0] = "ROLE";
        argvlen[0] = 4;
    }
    /* The kernel completes a TCP connect even for a stopped server, so the connection counts
     * as ready only once Redis itself has answered AUTH or PING. */
    redis->state = CONN_HANDSHAKE;
    if (send_cmd(redis, handshake_done, redis, argc, argv, argvlen, true) != PC_OK) {
        /* cannot free the context inside this callback: let the timer drop it */
        redis->state = CONN_CONNECTING;
        uv_timer_start(&redis->conn_timer, on_conn_timer, 0, 0);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    pc_redis_t *redis = ac->data;

    if (redis == NULL)
        return;
    pc_fail(&redis->last_error, PC_ERR_DEPENDENCY, "lost the connection to Redis at %s:%d: %s",
            redis->host, redis->port,
            ac->errstr != NULL && ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
    redis->ac = NULL; /* hiredis frees it after this callback */
    connection_lost(redis);
}

static void connect_to(pc_redis_t *redis, const char *ip)
{
    redisAsyncContext *ac = redisAsyncConnect(ip, redis->port);

    redis->state = CONN_CONNECTING;
    if (ac == NULL) {
        pc_fail(&redis->last_error, PC_ERR_NOMEM, "cannot connect to Redis at %s:%d: out of memory",
                redis->host, redis->port);
        goto out_lost;
    }
    if (ac->err != 0) {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY, "cannot connect to Redis at %s:%d: %s",
                redis->host, redis->port, ac->errstr);
        goto out_free_ac;
    }
    if (redisLibuvAttach(ac, redis->loop) != REDIS_OK) {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY,
                "cannot watch the Redis connection to %s:%d on the event loop", redis->host,
                redis->port);
        goto out_free_ac;
    }
    ac->data = redis;
    redis->ac = ac;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* hiredis 0.14 has no connect timeout: a blackholed address would hang forever */
    uv_timer_start(&redis->conn_timer, on_conn_timer, redis->command_timeout_ms, 0);
    return;

out_free_ac:
    redisAsyncFree(ac);
out_lost:
    connection_lost(redis);
}

/* pick_address writes one address of res as text: the n-th (modulo), so that successive
 * attempts go through all of them ("localhost" may be ::1 first, and Redis on 127.0.0.1). */
static void pick_address(const struct addrinfo *res, unsigned n, char *ip, size_t size)
{
    unsigned count = 0;

    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
        count += ai->ai_family == AF_INET || ai->ai_family == AF_INET6;
    if (count == 0)
        return;
    n %= count;
    for (const struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        if (n-- > 0)
            continue;
        if (ai->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)(const void *)ai->ai_addr, ip, size);
        else
            uv_ip6_name((const struct sockaddr_in6 *)(const void *)ai->ai_addr, ip, size);
        return;
    }
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    pc_redis_t *redis = req->data;
    char ip[INET6_ADDRSTRLEN] = "";

    redis->resolving = false;
    if (status == 0)
        pick_address(res, redis->attempt, ip, sizeof(ip));
    uv_freeaddrinfo(res);
    if (redis->closing) {
        maybe_finish(redis);
        return;
    }
    if (ip[0] == '\0') {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY,
                "cannot resolve the Redis host %s: %s; check redis.host", redis->host,
                status != 0 ? uv_strerror(status) : "no IPv4 or IPv6 address");
        connection_lost(redis);
        return;
    }
    connect_to(redis, ip);
}

/* discover_work asks the sentinels for the master and resolves its address (pool thread: both
 * block). Reads the target, read-only; writes only the fields the loop leaves alone while
 * discovering is set. */
static void discover_work(uv_work_t *req)
{
    pc_redis_t *redis = req->data;
    char host[PC_REDIS_HOST_MAX];
    int port = 0;
    struct addrinfo hints, *res = NULL;
    redis->discovered_ip[0] = '\0';
    if (pc_redis_target_locate(redis->target, redis->command_timeout_ms, host, &port,
                               &redis->discover_error) != PC_OK)
        return;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        pc_fail(&redis->discover_error, PC_ERR_DEPENDENCY,
                "cannot resolve %s, the Redis master the sentinels named: %s", host,
                gai_strerror(rc));
        if (res != NULL)
            freeaddrinfo(res);
        return;
    }
    if (res->ai_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)(const void *)res->ai_addr, redis->discovered_ip,
                    sizeof(redis->discovered_ip));
    else if (res->ai_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)(const void *)res->ai_addr, redis->discovered_ip,
                    sizeof(redis->discovered_ip));
    freeaddrinfo(res);
    memcpy(redis->discovered_host, host, sizeof(host));
    redis->discovered_port = port;
}

static void discover_done(uv_work_t *req, int status)
{
    pc_redis_t *redis = req->data;
    redis->discovering = false;
    if (redis->closing) {
        maybe_finish(redis);
        return;
    }
    if (status != 0 || redis->discovered_ip[0] == '\0') {
        redis->last_error = redis->discover_error;
        connection_lost(redis);
        return;
    }
    memcpy(redis->host, redis->discovered_host, sizeof(redis->host));
    redis->port = redis->discovered_port;
    connect_to(redis, redis->discovered_ip);
}

/* connect_start resolves the host off the loop thread (getaddrinfo blocks) unless it is an
 * address already, then connects; with sentinels, asks them first (on a pool thread too). */
static void connect_start(pc_redis_t *redis)
{
    struct in6_addr addr;
    struct addrinfo hints;
    int rc;

    if (pc_redis_target_sentinel(redis->target)) {
        redis->state = CONN_RESOLVING;
        redis->discover.data = redis;
        pc_fail(&redis->discover_error, PC_ERR_DEPENDENCY, "asking the sentinels failed");
        rc = uv_queue_work(redis->loop, &redis->discover, discover_work, discover_done);
        if (rc != 0) {
            pc_fail(&redis->last_error, PC_ERR_DEPENDENCY, "cannot ask the Redis sentinels: %s",
                    uv_strerror(rc));
            connection_lost(redis);
            return;
        }
        redis->discovering = true;
        return;
    }

    if (inet_pton(AF_INET, redis->host, &addr) == 1 ||
        inet_pton(AF_INET6, redis->host, &addr) == 1) {
        connect_to(redis, redis->host);
        return;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    redis->state = CONN_RESOLVING;
    redis->resolve.data = redis;
    rc = uv_getaddrinfo(redis->loop, &redis->resolve, on_resolved, redis->host, NULL, &hints);
    if (rc != 0) {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY, "cannot resolve the Redis host %s: %s",
                redis->host, uv_strerror(rc));
        connection_lost(redis);
        return;
    }
    redis->resolving = true;
}

static void on_conn_timer(uv_timer_t *timer)
{
    pc_redis_t *redis = timer->data;

    if (redis->state == CONN_WAITING) {
        connect_start(redis);
    } else if (redis->state == CONN_CONNECTING && redis->ac != NULL) {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY,
                "connecting to Redis at %s:%d took longer than %u ms", redis->host, redis->port,
                redis->command_timeout_ms);
        drop_connection(redis);
    }
}

static void handshake_done(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    pc_redis_t *redis = arg;

    if (err != PC_OK)
        return; /* timed out or lost: the connection is being dropped already */
    if (reply->type == REDIS_REPLY_ERROR) {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY,
                "Redis at %s:%d refused the connection: %s; check redis.username and "
                "redis.password",
                redis->host, redis->port, reply->str);
        redis->refused = true;
        drop_connection(redis);
        return;
    }
    if (pc_redis_target_sentinel(redis->target) && reply->type != REDIS_REPLY_ARRAY) {
        /* logged in: now ROLE, to be sure the sentinels' answer is still the master */
        const char *argv[] = {"ROLE"};
        size_t argvlen[] = {4};
        if (send_cmd(redis, handshake_done, redis, 1, argv, argvlen, true) != PC_OK)
            drop_connection(redis);
        return;
    }
    if (pc_redis_target_sentinel(redis->target) && !pc_redis_reply_is_master(reply)) {
        pc_fail(&redis->last_error, PC_ERR_DEPENDENCY,
                "Redis at %s:%d, which the sentinels named the master, is not one (a failover "
                "under way?); asking the sentinels again",
                redis->host, redis->port);
        drop_connection(redis);
        return;
    }
    redis->state = CONN_READY;
    redis->attempt = 0;
    redis->refused = false;
    report_state(redis, true);
}

/* ---- commands ----------------------------------------------------------------------------- */

static void cmd_closed(uv_handle_t *handle)
{
    cmd_t *cmd = handle->data;
    pc_redis_t *redis = cmd->redis;

    if (cmd->prev != NULL)
        cmd->prev->next = cmd->next;
    else
        redis->cmds = cmd->next;
    if (cmd->next != NULL)
        cmd->next->prev = cmd->prev;
    redis->ncmds--;
    free(cmd);
    maybe_finish(redis);
}

/* cmd_settle frees cmd (through its timer's close callback) once both the caller and hiredis
 * are done with it. */
static void cmd_settle(cmd_t *cmd)
{
    if (cmd->answered && !cmd->in_hiredis && !uv_is_closing((uv_handle_t *)&cmd->timer))
        uv_close((uv_handle_t *)&cmd->timer, cmd_closed);
}

/* cmd_answer calls the caller's callback, at most once per command. */
static void cmd_answer(cmd_t *cmd, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    if (cmd->answered)
        return;
    cmd->answered = true;
    uv_timer_stop(&cmd->timer);
    cmd->cb(cmd->arg, err, reply, diag);
}

static void on_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    cmd_t *cmd = privdata;
    pc_redis_t *redis = cmd->redis;
    pc_diag_t diag;

    cmd->in_hiredis = false;
    if (r != NULL && pc_redis_reply_readonly(r)) {
        /* the master was demoted (a failover) and we are still connected to it: the command
         * did nothing; the caller retries on the new master, which the next connection finds */
        pc_fail(&diag, PC_ERR_DEPENDENCY,
                "Redis at %s:%d is a replica now and refused %s (READONLY); reconnecting to the "
                "master",
                redis->host, redis->port, cmd->name);
        cmd_answer(cmd, PC_ERR_DEPENDENCY, NULL, &diag);
        if (ac == redis->ac) {
            redis->last_error = diag;
            drop_connection(redis);
        }
        cmd_settle(cmd);
        return;
    }
    if (r == NULL) {
        pc_fail(&diag, PC_ERR_DEPENDENCY,
                "lost the connection to Redis at %s:%d before it answered %s: %s", redis->host,
                redis->port, cmd->name,
                ac->errstr != NULL && ac->errstr[0] != '\0' ? ac->errstr : "connection closed");
        cmd_answer(cmd, PC_ERR_DEPENDENCY, NULL, &diag);
    } else {
        cmd_answer(cmd, PC_OK, r, NULL);
    }
    cmd_settle(cmd);
}

static void on_cmd_timer(uv_timer_t *timer)
{
    cmd_t *cmd = timer->data;
    pc_redis_t *redis = cmd->redis;
    pc_diag_t diag;

    if (cmd->in_hiredis) {
        pc_fail(&diag, PC_ERR_DEPENDENCY,
                "Redis at %s:%d did not answer %s within %u ms; reconnecting", redis->host,
                redis->port, cmd->name, redis->command_timeout_ms);
        cmd_answer(cmd, PC_ERR_DEPENDENCY, NULL, &diag);
        /* A Redis that stops answering (stopped, overloaded, half-open TCP) is treated as
         * gone: hiredis would otherwise wait forever, and every later reply would be late. */
        if (cmd->in_hiredis && cmd->ac == redis->ac) {
            redis->last_error = diag;
            drop_connection(redis);
        }
    } else {
        pc_fail(&diag, PC_ERR_DEPENDENCY, "Redis at %s:%d is not connected, %s not sent (%s)",
                redis->host, redis->port, cmd->name,
                redis->closing             ? "connection closed"
                : redis->last_error.msg[0] ? redis->last_error.msg
                                           : "still connecting");
        cmd_answer(cmd, PC_ERR_DEPENDENCY, NULL, &diag);
    }
    cmd_settle(cmd);
}

/* send_cmd queues one command; handshake commands go out before the connection is ready. */
static pc_err_t send_cmd(pc_redis_t *redis, pc_redis_reply_fn cb, void *arg, int argc,
                         const char **argv, const size_t *argvlen, bool handshake)
{
    conn_state_t want = handshake ? CONN_HANDSHAKE : CONN_READY;
    size_t namelen;
    cmd_t *cmd;

    if (redis->closing)
        return PC_ERR_DEPENDENCY;
    cmd = calloc(1, sizeof(*cmd));
    if (cmd == NULL)
        return PC_ERR_NOMEM;
    cmd->redis = redis;
    cmd->cb = cb;
    cmd->arg = arg;
    namelen = argvlen[0] < sizeof(cmd->name) - 1 ? argvlen[0] : sizeof(cmd->name) - 1;
    memcpy(cmd->name, argv[0], namelen);
    uv_timer_init(redis->loop, &cmd->timer);
    cmd->timer.data = cmd;
    cmd->next = redis->cmds;
    if (redis->cmds != NULL)
        redis->cmds->prev = cmd;
    redis->cmds = cmd;
    redis->ncmds++;

    if (redis->state == want && redis->ac != NULL &&
        redisAsyncCommandArgv(redis->ac, on_reply, cmd, argc, argv, argvlen) == REDIS_OK) {
        cmd->in_hiredis = true;
        cmd->ac = redis->ac;
        uv_timer_start(&cmd->timer, on_cmd_timer, redis->command_timeout_ms, 0);
    } else {
        /* fail from the loop, never inside the caller's own call */
        uv_timer_start(&cmd->timer, on_cmd_timer, 0, 0);
    }
    return PC_OK;
}

/* ---- scripts ------------------------------------------------------------------------------ */

typedef struct eval {
    pc_redis_t *redis;
    const char *source; /* borrowed: the script's source outlives the call */
    pc_redis_reply_fn cb;
    void *arg;
    bool retried;
    bool durable;      /* WAIT for the replicas before answering */
    const char *name;  /* the script's, static */
    redisReply *held;  /* the script's reply, kept while WAIT runs */
    char wait_buf[32]; /* WAIT's arguments */
    int argc;
    const char **argv;
    size_t *argvlen;
    char sha1[41];
    char nkeys[16];
    char data[]; /* copies of the caller's arguments */
} eval_t;

static void eval_free(eval_t *ev)
{
    if (ev->held != NULL)
        freeReplyObject(ev->held);
    free(ev->argv);
    free(ev->argvlen);
    free(ev);
}

/* reply_copy deep-copies a reply (hiredis frees its own after the callback); NULL when out of
 * memory. Freed with freeReplyObject, as hiredis's default reader builds them. */
static redisReply *reply_copy(const redisReply *r)
{
    redisReply *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->type = r->type;
    c->integer = r->integer;
    if (r->str != NULL) {
        c->str = malloc(r->len + 1);
        if (c->str == NULL)
            goto out_free_copy;
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
        c->len = r->len;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
        c->element = calloc(r->elements, sizeof(*c->element));
        if (c->element == NULL)
            goto out_free_copy;
        c->elements = r->elements;
        for (size_t i = 0; i < r->elements; i++)
            if ((c->element[i] = reply_copy(r->element[i])) == NULL)
                goto out_free_copy;
    }
    return c;
out_free_copy:
    freeReplyObject(c);
    return NULL;
}

/* wait_done: the replicas' count for a durable script's write. Fewer than asked means the
 * write may not survive a failover (or our master is not one any more: its replica was
 * promoted): the caller retries, and with Sentinel the connection is made again, to the
 * master the sentinels name now. */
static void wait_done(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    eval_t *ev = arg;
    pc_redis_t *redis = ev->redis;
    unsigned want = pc_redis_target_min_acks(redis->target);
    pc_diag_t mine;
    if (err == PC_OK && reply->type == REDIS_REPLY_INTEGER && reply->integer >= (long long)want) {
        ev->cb(ev->arg, PC_OK, ev->held, NULL);
        eval_free(ev);
        return;
    }
    if (err == PC_OK) {
        err = pc_fail(&mine, PC_ERR_DEPENDENCY,
                      "Redis at %s:%d ran %s but %lld replica(s) confirmed its write within %u "
                      "ms, not %u (redis.min_replicas_acks): it may not survive a failover; "
                      "retrying",
                      redis->host, redis->port, ev->name,
                      reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0LL,
                      redis->command_timeout_ms / 2, want);
        diag = &mine;
        if (pc_redis_target_sentinel(redis->target) && redis->ac != NULL) {
            redis->last_error = mine;
            drop_connection(redis);
        }
    }
    ev->cb(ev->arg, err, NULL, diag);
    eval_free(ev);
}

static void eval_done(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    eval_t *ev = arg;
    pc_diag_t mine;

    if (err == PC_OK && reply->type == REDIS_REPLY_ERROR && !ev->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0) {
        /* the server lost its script cache (restart, SCRIPT FLUSH): EVAL also reloads it */
        ev->retried = true;
        ev->argv[0] = "EVAL";
        ev->argvlen[0] = 4;
        ev->argv[1] = ev->source;
        ev->argvlen[1] = strlen(ev->source);
        if (send_cmd(ev->redis, eval_done, ev, ev->argc, ev->argv, ev->argvlen, false) == PC_OK)
            return;
        err = pc_fail(&mine, PC_ERR_DEPENDENCY, "Redis connection closed before EVAL was sent");
        reply = NULL;
        diag = &mine;
    }
    if (err == PC_OK && reply->type != REDIS_REPLY_ERROR && ev->durable &&
        pc_redis_target_min_acks(ev->redis->target) > 0) {
        /* WAIT counts the replicas that have every write this connection made so far */
        const char *argv[3];
        size_t argvlen[3];
        pc_redis_target_wait_args(ev->redis->target, ev->redis->command_timeout_ms, ev->wait_buf,
                                  argv, argvlen);
        if ((ev->held = reply_copy(reply)) == NULL)
            err = pc_fail(&mine, PC_ERR_NOMEM, "out of memory keeping a Redis reply");
        else if (send_cmd(ev->redis, wait_done, ev, 3, argv, argvlen, false) == PC_OK)
            return;
        else
            err = pc_fail(&mine, PC_ERR_DEPENDENCY, "Redis connection closed before WAIT was sent");
        reply = NULL;
        diag = &mine;
    }
    ev->cb(ev->arg, err, reply, diag);
    eval_free(ev);
}

static eval_t *eval_new(pc_redis_script_t *script, int nkeys, int argc, const char **argv,
                        const size_t *argvlen)
{
    size_t total = 0;
    int n = argc + 3;
    eval_t *ev;
    char *p;

    for (int i = 0; i < argc; i++)
        total += argvlen[i];
    ev = calloc(1, sizeof(*ev) + total + 1);
    if (ev == NULL)
        return NULL;
    ev->argv = calloc((size_t)n, sizeof(*ev->argv));
    ev->argvlen = calloc((size_t)n, sizeof(*ev->argvlen));
    if (ev->argv == NULL || ev->argvlen == NULL)
        goto out_free_ev;
    memcpy(ev->sha1, script->sha1, sizeof(ev->sha1));
    ev->durable = script->durable;
    ev->name = script->name != NULL ? script->name : "a script";
    snprintf(ev->nkeys, sizeof(ev->nkeys), "%d", nkeys);
    ev->source = script->source;
    ev->argc = n;
    ev->argv[0] = "EVALSHA";
    ev->argv[1] = ev->sha1;
    ev->argv[2] = ev->nkeys;
    p = ev->data;
    for (int i = 0; i < argc; i++) {
        if (argvlen[i] > 0)
            memcpy(p, argv[i], argvlen[i]);
        ev->argv[i + 3] = p;
        ev->argvlen[i + 3] = argvlen[i];
        p += argvlen[i];
    }
    for (int i = 0; i < 3; i++)
        ev->argvlen[i] = strlen(ev->argv[i]);
    return ev;

out_free_ev:
    eval_free(ev);
    return NULL;
}

/* ---- public API --------------------------------------------------------------------------- */

pc_err_t pc_redis_new(uv_loop_t *loop, const pc_redis_config_t *cfg, pc_redis_t **out,
                      pc_diag_t *diag)
{
    static const pc_redis_config_t defaults = {0};
    const pc_redis_config_t *c = cfg != NULL ? cfg : &defaults;
    pc_err_t err = PC_OK;
    pc_redis_t *redis;

    *out = NULL;
    redis = calloc(1, sizeof(*redis));
    if (redis == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory creating the Redis connection");
    redis->loop = loop;
    if ((err = pc_redis_target_new(c, &redis->target, diag)) != PC_OK)
        goto out_free_redis;
    if (pc_redis_target_sentinel(redis->target))
        pc_redis_target_name(redis->target, redis->host, sizeof(redis->host));
    else
        pc_redis_target_locate(redis->target, 0, redis->host, &redis->port, NULL);
    redis->command_timeout_ms = c->command_timeout_ms != 0 ? c->command_timeout_ms : 2000;
    redis->reconnect_min_ms = c->reconnect_min_ms != 0 ? c->reconnect_min_ms : 100;
    redis->reconnect_max_ms = c->reconnect_max_ms != 0 ? c->reconnect_max_ms : 5000;
    if (redis->reconnect_max_ms < redis->reconnect_min_ms)
        redis->reconnect_max_ms = redis->reconnect_min_ms;
    redis->rng = (uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)redis) | 1;
    uv_timer_init(loop, &redis->conn_timer);
    redis->conn_timer.data = redis;
    connect_start(redis);
    *out = redis;
    return PC_OK;

out_free_redis:
    free(redis);
    return err;
}

bool pc_redis_ready(const pc_redis_t *redis)
{
    return redis != NULL && redis->state == CONN_READY;
}

bool pc_redis_refused(const pc_redis_t *redis)
{
    return redis != NULL && redis->refused;
}

const char *pc_redis_last_error(const pc_redis_t *redis)
{
    return redis->last_error.msg;
}

void pc_redis_on_state(pc_redis_t *redis, void (*fn)(void *arg, bool up), void *arg)
{
    redis->state_fn = fn;
    redis->state_arg = arg;
}

pc_err_t pc_redis_command(pc_redis_t *redis, pc_redis_reply_fn cb, void *arg, int argc,
                          const char **argv, const size_t *argvlen)
{
    if (argc < 1 || argv == NULL || argvlen == NULL || cb == NULL)
        return PC_ERR_INVALID_PARAM;
    return send_cmd(redis, cb, arg, argc, argv, argvlen, false);
}

void pc_redis_script_init(pc_redis_script_t *script)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;

    memset(script->sha1, 0, sizeof(script->sha1));
    if (EVP_Digest(script->source, strlen(script->source), md, &len, EVP_sha1(), NULL) != 1 ||
        len != 20)
        return; /* an empty sha1 makes EVALSHA fail with NOSCRIPT, and EVAL still works */
    for (unsigned i = 0; i < len; i++) {
        script->sha1[2 * i] = hex[md[i] >> 4];
        script->sha1[2 * i + 1] = hex[md[i] & 15];
    }
}

pc_err_t pc_redis_eval(pc_redis_t *redis, pc_redis_script_t *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen, pc_redis_reply_fn cb, void *arg)
{
    pc_err_t err;
    eval_t *ev;

    if (nkeys < 0 || argc < nkeys || cb == NULL || (argc > 0 && (argv == NULL || !argvlen)))
        return PC_ERR_INVALID_PARAM;
    ev = eval_new(script, nkeys, argc, argv, argvlen);
    if (ev == NULL)
        return PC_ERR_NOMEM;
    ev->redis = redis;
    ev->cb = cb;
    ev->arg = arg;
    err = send_cmd(redis, eval_done, ev, ev->argc, ev->argv, ev->argvlen, false);
    if (err != PC_OK)
        eval_free(ev);
    return err;
}

void pc_redis_close(pc_redis_t *redis, void (*closed)(void *arg), void *arg)
{
    pc_diag_t diag;

    if (redis == NULL || redis->closing)
        return;
    redis->closing = true;
    redis->closed_fn = closed;
    redis->closed_arg = arg;
    redis->state_fn = NULL; /* the owner is shutting down: no more state news */
    uv_timer_stop(&redis->conn_timer);
    if (redis->resolving)
        uv_cancel((uv_req_t *)&redis->resolve);
    if (redis->discovering)
        uv_cancel((uv_req_t *)&redis->discover);
    drop_connection(redis); /* hiredis answers what it holds, unless inside a reply callback */
    pc_fail(&diag, PC_ERR_DEPENDENCY, "the Redis connection to %s:%d was closed", redis->host,
            redis->port);
    for (cmd_t *cmd = redis->cmds, *next; cmd != NULL; cmd = next) {
        next = cmd->next;
        cmd_answer(cmd, PC_ERR_DEPENDENCY, NULL, &diag);
        cmd_settle(cmd);
    }
    maybe_finish(redis);
}

/* ---- the eviction policy ---------------------------------------------------------------- */

typedef struct eviction_check {
    pc_redis_t *redis;
    pc_redis_checked_fn cb;
    void *arg;
    char config_error[128]; /* what CONFIG GET answered, when it was refused */
} eviction_check_t;

static void eviction_verdict(eviction_check_t *check, const char *policy, size_t len)
{
    pc_diag_t diag;
    pc_redis_t *redis = check->redis;
    pc_err_t err = PC_OK;
    if (len != strlen("noeviction") || memcmp(policy, "noeviction", len) != 0)
        err = pc_fail(&diag, PC_ERR_INVALID_PARAM,
                      "Redis at %s:%d has maxmemory-policy %.*s, which lets it delete the local "
                      "CA's records and the request claims when memory runs out; set "
                      "maxmemory-policy noeviction (redis.conf, and CONFIG SET on the running "
                      "server)",
                      redis->host, redis->port, (int)(len < 64 ? len : 64), policy);
    check->cb(check->arg, err, err == PC_OK ? NULL : &diag);
    free(check);
}

static void eviction_info_done(void *arg, pc_err_t err, const redisReply *reply,
                               const pc_diag_t *diag)
{
    eviction_check_t *check = arg;
    static const char field[] = "maxmemory_policy:";
    const char *line = NULL;
    pc_diag_t mine;
    if (err != PC_OK) {
        check->cb(check->arg, err, diag);
        free(check);
        return;
    }
    if (reply->type == REDIS_REPLY_STRING)
        line = strstr(reply->str, field);
    if (line == NULL) {
        pc_fail(&mine, PC_ERR_NOT_SUPPORTED,
                "cannot read Redis's maxmemory-policy: CONFIG GET answered \"%s\" and INFO memory "
                "\"%.100s\"; allow +config|get or +info to the redis.username user, and make "
                "sure the policy is noeviction",
                check->config_error,
                reply->type == REDIS_REPLY_ERROR ? reply->str : "no maxmemory_policy field");
        check->cb(check->arg, PC_ERR_NOT_SUPPORTED, &mine);
        free(check);
        return;
    }
    line += sizeof(field) - 1;
    eviction_verdict(check, line, strcspn(line, "\r\n"));
}

static void eviction_config_done(void *arg, pc_err_t err, const redisReply *reply,
                                 const pc_diag_t *diag)
{
    eviction_check_t *check = arg;
    const char *info[] = {"INFO", "memory"};
    static const size_t info_len[] = {4, 6};
    if (err != PC_OK) {
        check->cb(check->arg, err, diag);
        free(check);
        return;
    }
    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING) {
        eviction_verdict(check, reply->element[1]->str, reply->element[1]->len);
        return;
    }
    /* an ACL without +config|get (NOPERM), or CONFIG renamed away: INFO says it too */
    snprintf(check->config_error, sizeof(check->config_error), "%.100s",
             reply->type == REDIS_REPLY_ERROR ? reply->str : "an unexpected reply");
    if (send_cmd(check->redis, eviction_info_done, check, 2, info, info_len, false) != PC_OK) {
        pc_diag_t mine;
        pc_fail(&mine, PC_ERR_DEPENDENCY, "the Redis connection was closed");
        check->cb(check->arg, PC_ERR_DEPENDENCY, &mine);
        free(check);
    }
}

pc_err_t pc_redis_check_eviction(pc_redis_t *redis, pc_redis_checked_fn cb, void *arg)
{
    const char *argv[] = {"CONFIG", "GET", "maxmemory-policy"};
    static const size_t argvlen[] = {6, 3, 16};
    eviction_check_t *check = calloc(1, sizeof(*check));
    if (check == NULL)
        return PC_ERR_NOMEM;
    check->redis = redis;
    check->cb = cb;
    check->arg = arg;
    pc_err_t err = send_cmd(redis, eviction_config_done, check, 3, argv, argvlen, false);
    if (err != PC_OK)
        free(check);
    return err;
}

/* ---- arguments --------------------------------------------------------------------------- */

pc_err_t pc_args_add(pc_args_t *args, const void *data, size_t len)
{
    if (args->n == args->cap) {
        int cap = args->cap != 0 ? args->cap * 2 : 16;
        const char **v = realloc((void *)args->v, (size_t)cap * sizeof(*v));
        if (v == NULL)
            return PC_ERR_NOMEM;
        args->v = v;
        size_t *lens = realloc(args->len, (size_t)cap * sizeof(*lens));
        if (lens == NULL)
            return PC_ERR_NOMEM;
        args->len = lens;
        args->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return PC_ERR_NOMEM;
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    args->v[args->n] = copy;
    args->len[args->n++] = len;
    return PC_OK;
}

pc_err_t pc_args_addf(pc_args_t *args, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return PC_ERR_INVALID_PARAM;
    return pc_args_add(args, buf, (size_t)n);
}

void pc_args_free(pc_args_t *args)
{
    for (int i = 0; i < args->n; i++)
        free((void *)(uintptr_t)args->v[i]);
    free((void *)args->v);
    free(args->len);
    *args = (pc_args_t){0};
}
