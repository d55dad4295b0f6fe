/*
 * redis_target.c - the address and login of the cluster's Redis, shared by every connection:
 * a fixed host and port, or Redis Sentinel's current master. Sentinels are asked in the
 * configured order (the first that answers wins: they agree once a failover is over, and one
 * still mid-failover names the old master, which the ROLE check then refuses, so the caller
 * asks again after its backoff). Blocking calls (hiredis's synchronous API) on whatever
 * thread calls them, never the loop's; the target itself is read-only after
 * pc_redis_target_new.
 */
#include "redis_target.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/crypto.h>

#include "redis.h"
#include "text.h"

#define SENTINELS_MAX 16

typedef struct endpoint {
    char host[PC_REDIS_HOST_MAX];
    int port;
} endpoint_t;

struct pc_redis_target {
    endpoint_t fixed; /* redis.host, redis.port */
    char *username;   /* NULL: AUTH with the password alone */
    char *password;   /* NULL: no AUTH */
    endpoint_t sentinels[SENTINELS_MAX];
    size_t sentinel_count; /* 0: the fixed address */
    char *master_name;
    char *sentinel_password;
    char *sentinel_list; /* as configured, for messages */
    unsigned min_acks;
};

static bool given(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static char *dup_or_null(const char *s, bool *nomem)
{
    char *copy = given(s) ? strdup(s) : NULL;
    if (given(s) && copy == NULL)
        *nomem = true;
    return copy;
}

/* parse_endpoint reads "host:port" or "[v6]:port" of len bytes. */
static bool parse_endpoint(const char *text, size_t len, endpoint_t *ep)
{
    const char *colon = NULL;
    for (size_t i = 0; i < len; i++)
        if (text[i] == ':')
            colon = text + i;
    if (colon == NULL || colon == text || colon + 1 == text + len)
        return false;
    const char *host = text;
    size_t host_len = (size_t)(colon - text);
    if (host[0] == '[' && host[host_len - 1] == ']') {
        host++;
        host_len -= 2;
    }
    long port = 0;
    for (const char *p = colon + 1; p < text + len; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return false;
        port = port * 10 + (*p - '0');
    }
    if (host_len == 0 || host_len >= sizeof(ep->host) || port < 1 || port > 65535)
        return false;
    memcpy(ep->host, host, host_len);
    ep->host[host_len] = '\0';
    ep->port = (int)port;
    return true;
}

static pc_err_t parse_sentinels(pc_redis_target_t *t, const char *list, pc_diag_t *diag)
{
    const char *p = list;
    while (*p != '\0') {
        size_t skip = strspn(p, " ,");
        p += skip;
        size_t len = strcspn(p, " ,");
        if (len == 0)
            break;
        if (t->sentinel_count == SENTINELS_MAX)
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "redis.sentinels lists more than %d sentinels; keep %d or fewer",
                           SENTINELS_MAX, SENTINELS_MAX);
        if (!parse_endpoint(p, len, &t->sentinels[t->sentinel_count]))
            return pc_fail(diag, PC_ERR_INVALID_PARAM,
                           "redis.sentinels: \"%.*s\" is not host:port; write "
                           "\"host:port,host:port\" (Sentinel's port is usually 26379)",
                           (int)(len < 100 ? len : 100), p);
        t->sentinel_count++;
        p += len;
    }
    if (t->sentinel_count == 0)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "redis.sentinels names no sentinel; write \"host:port,host:port\"");
    return PC_OK;
}

pc_err_t pc_redis_target_new(const pc_redis_config_t *cfg, pc_redis_target_t **out, pc_diag_t *diag)
{
    static const pc_redis_config_t defaults = {0};
    const pc_redis_config_t *c = cfg != NULL ? cfg : &defaults;
    bool nomem = false;
    pc_err_t err = PC_OK;

    *out = NULL;
    if (c->port < 0 || c->port > 65535)
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "redis.port %d is out of range; use 1-65535 (default 6379)", c->port);
    if (c->host != NULL && c->host[0] == '\0')
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "redis.host is empty; set a host name or address (default 127.0.0.1)");
    if (c->host != NULL && strlen(c->host) >= PC_REDIS_HOST_MAX)
        return pc_fail(diag, PC_ERR_INVALID_PARAM, "redis.host is longer than %d bytes",
                       PC_REDIS_HOST_MAX - 1);
    if (given(c->username) && !given(c->password))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "redis.username \"%s\" is set without redis.password; set the ACL "
                       "user's password (redis.password or redis.password_file)",
                       c->username);
    if (given(c->sentinels) != given(c->master_name))
        return pc_fail(diag, PC_ERR_INVALID_PARAM,
                       "redis.sentinels and redis.master_name go together (the sentinels, and "
                       "the name they monitor the master under); set both or neither");
    pc_redis_target_t *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    snprintf(t->fixed.host, sizeof(t->fixed.host), "%s", c->host != NULL ? c->host : "127.0.0.1");
    t->fixed.port = c->port != 0 ? c->port : 6379;
    t->min_acks = c->min_replicas_acks;
    t->username = dup_or_null(c->username, &nomem);
    t->password = dup_or_null(c->password, &nomem);
    t->master_name = dup_or_null(c->master_name, &nomem);
    t->sentinel_password = dup_or_null(c->sentinel_password, &nomem);
    t->sentinel_list = dup_or_null(c->sentinels, &nomem);
    if (nomem) {
        err = pc_fail(diag, PC_ERR_NOMEM, "out of memory");
        goto out_free_target;
    }
    if (given(c->sentinels) && (err = parse_sentinels(t, c->sentinels, diag)) != PC_OK)
        goto out_free_target;
    *out = t;
    return PC_OK;

out_free_target:
    pc_redis_target_free(t);
    return err;
}

void pc_redis_target_free(pc_redis_target_t *t)
{
    if (t == NULL)
        return;
    free(t->username);
    pc_str_free_secret(t->password);
    free(t->master_name);
    pc_str_free_secret(t->sentinel_password);
    free(t->sentinel_list);
    free(t);
}

bool pc_redis_target_sentinel(const pc_redis_target_t *t)
{
    return t->sentinel_count > 0;
}

unsigned pc_redis_target_min_acks(const pc_redis_target_t *t)
{
    return t->min_acks;
}

void pc_redis_target_wait_args(const pc_redis_target_t *t, unsigned timeout_ms, char buf[32],
                               const char *argv[3], size_t argvlen[3])
{
    int n = snprintf(buf, 32, "%u", t->min_acks);
    unsigned wait_ms = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
    snprintf(buf + n + 1, 32 - (size_t)n - 1, "%u", wait_ms);
    argv[0] = "WAIT";
    argv[1] = buf;
    argv[2] = buf + n + 1;
    for (int i = 0; i < 3; i++)
        argvlen[i] = strlen(argv[i]);
}

void pc_redis_target_name(const pc_redis_target_t *t, char *buf, size_t size)
{
    if (t->sentinel_count > 0)
        snprintf(buf, size, "the master \"%s\" of the sentinels at %s", t->master_name,
                 t->sentinel_list);
    else
        snprintf(buf, size, "%s:%d", t->fixed.host, t->fixed.port);
}

int pc_redis_target_auth(const pc_redis_target_t *t, const char *argv[3], size_t argvlen[3])
{
    int argc = 0;
    if (t->password == NULL)
        return 0;
    argv[argc++] = "AUTH";
    if (t->username != NULL)
        argv[argc++] = t->username;
    argv[argc++] = t->password;
    for (int i = 0; i < argc; i++)
        argvlen[i] = strlen(argv[i]);
    return argc;
}

bool pc_redis_reply_is_master(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 &&
           reply->element[0]->type == REDIS_REPLY_STRING &&
           strcmp(reply->element[0]->str, "master") == 0;
}

bool pc_redis_reply_readonly(const redisReply *reply)
{
    /* "READONLY You can't write against a read only replica.", prefixed by the script's own
     * error text when a script's write was refused */
    return reply != NULL && reply->type == REDIS_REPLY_ERROR &&
           (strncmp(reply->str, "READONLY", 8) == 0 || strstr(reply->str, "-READONLY") != NULL ||
            strstr(reply->str, "write against a read only replica") != NULL);
}

/* ---- blocking ---------------------------------------------------------------------------- */

static struct timeval timeval_ms(unsigned ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* open_blocking connects to ep with timeout_ms on the connect and on each command. NULL with
 * why filled when it cannot. */
static redisContext *open_blocking(const endpoint_t *ep, unsigned timeout_ms, char *why,
                                   size_t why_size)
{
    struct timeval tv = timeval_ms(timeout_ms);
    redisContext *ctx = redisConnectWithTimeout(ep->host, ep->port, tv);
    if (ctx == NULL) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    if (ctx->err != 0 || redisSetTimeout(ctx, tv) != REDIS_OK) {
        snprintf(why, why_size, "%s", ctx->errstr[0] != '\0' ? ctx->errstr : "cannot connect");
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

/* ask_sentinel asks one sentinel for the master's address. */
static bool ask_sentinel(const pc_redis_target_t *t, const endpoint_t *sentinel,
                         unsigned timeout_ms, endpoint_t *master, char *why, size_t why_size)
{
    redisReply *reply = NULL;
    bool found = false;
    redisContext *ctx = open_blocking(sentinel, timeout_ms, why, why_size);
    if (ctx == NULL)
        return false;
    if (t->sentinel_password != NULL) {
        const char *auth[] = {"AUTH", t->sentinel_password};
        reply = redisCommandArgv(ctx, 2, auth, NULL);
        if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
            snprintf(why, why_size, "%s; check redis.sentinel_password",
                     reply != NULL ? reply->str : ctx->errstr);
            goto out_free_ctx;
        }
        freeReplyObject(reply);
    }
    const char *argv[] = {"SENTINEL", "get-master-addr-by-name", t->master_name};
    reply = redisCommandArgv(ctx, 3, argv, NULL);
    if (reply == NULL)
        snprintf(why, why_size, "%s", ctx->errstr);
    else if (reply->type == REDIS_REPLY_ERROR)
        snprintf(why, why_size, "%s", reply->str);
    else if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
             reply->element[0]->type != REDIS_REPLY_STRING ||
             reply->element[1]->type != REDIS_REPLY_STRING)
        snprintf(why, why_size, "it does not know a master named \"%s\"", t->master_name);
    else {
        char text[PC_REDIS_WHERE_MAX];
        snprintf(text, sizeof(text), "%s:%s", reply->element[0]->str, reply->element[1]->str);
        found = parse_endpoint(text, strlen(text), master);
        if (!found)
            snprintf(why, why_size, "it named \"%.100s\", not host:port", text);
    }
out_free_ctx:
    freeReplyObject(reply);
    redisFree(ctx);
    return found;
}

pc_err_t pc_redis_target_locate(const pc_redis_target_t *t, unsigned timeout_ms, char *host,
                                int *port, pc_diag_t *diag)
{
    char reasons[sizeof(diag->msg)] = "";
    size_t used = 0;
    endpoint_t master;
    if (t->sentinel_count == 0) {
        snprintf(host, PC_REDIS_HOST_MAX, "%s", t->fixed.host);
        *port = t->fixed.port;
        return PC_OK;
    }
    for (size_t i = 0; i < t->sentinel_count; i++) {
        char why[160] = "";
        const endpoint_t *s = &t->sentinels[i];
        if (ask_sentinel(t, s, timeout_ms, &master, why, sizeof(why))) {
            snprintf(host, PC_REDIS_HOST_MAX, "%s", master.host);
            *port = master.port;
            return PC_OK;
        }
        if (used < sizeof(reasons)) {
            int n = snprintf(reasons + used, sizeof(reasons) - used, "%s%s:%d: %s",
                             i > 0 ? "; " : "", s->host, s->port, why);
            used += n > 0 ? (size_t)n : 0;
        }
    }
    return pc_fail(diag, PC_ERR_DEPENDENCY,
                   "no sentinel named the Redis master \"%s\" (%s); check redis.sentinels and "
                   "redis.master_name",
                   t->master_name, reasons);
}

/* login sends AUTH (if any) and, with sentinels, ROLE on ctx. */
static pc_err_t login(const pc_redis_target_t *t, redisContext *ctx, const char *where,
                      pc_diag_t *diag)
{
    const char *argv[3];
    size_t argvlen[3];
    pc_err_t err = PC_OK;
    int argc = pc_redis_target_auth(t, argv, argvlen);
    redisReply *reply = NULL;
    if (argc > 0) {
        reply = redisCommandArgv(ctx, argc, argv, argvlen);
        if (reply == NULL)
            return pc_fail(diag, PC_ERR_DEPENDENCY, "Redis at %s: %s", where, ctx->errstr);
        if (reply->type == REDIS_REPLY_ERROR)
            err = pc_fail(diag, PC_ERR_DEPENDENCY,
                          "Redis at %s refused our login: %s; check redis.username and "
                          "redis.password",
                          where, reply->str);
        freeReplyObject(reply);
        if (err != PC_OK)
            return err;
    }
    if (t->sentinel_count == 0)
        return PC_OK;
    const char *role[] = {"ROLE"};
    reply = redisCommandArgv(ctx, 1, role, NULL);
    if (reply == NULL)
        err = pc_fail(diag, PC_ERR_DEPENDENCY, "Redis at %s: %s", where, ctx->errstr);
    else if (!pc_redis_reply_is_master(reply))
        err = pc_fail(diag, PC_ERR_DEPENDENCY,
                      "Redis at %s, which the sentinels named master \"%s\", is not a master "
                      "(a failover under way?); asking the sentinels again",
                      where, t->master_name);
    freeReplyObject(reply);
    return err;
}

pc_err_t pc_redis_target_connect(const pc_redis_target_t *t, unsigned timeout_ms,
                                 redisContext **out, char *where, pc_diag_t *diag)
{
    char host[PC_REDIS_HOST_MAX], why[160];
    int port = 0;
    endpoint_t ep;
    *out = NULL;
    pc_redis_target_name(t, where, PC_REDIS_WHERE_MAX);
    pc_err_t err = pc_redis_target_locate(t, timeout_ms, host, &port, diag);
    if (err != PC_OK)
        return err;
    snprintf(where, PC_REDIS_WHERE_MAX, "%s:%d", host, port);
    memcpy(ep.host, host, sizeof(ep.host));
    ep.port = port;
    redisContext *ctx = open_blocking(&ep, timeout_ms, why, sizeof(why));
    if (ctx == NULL)
        return pc_fail(diag, PC_ERR_DEPENDENCY, "cannot connect to Redis at %s: %s", where, why);
    if ((err = login(t, ctx, where, diag)) != PC_OK) {
        redisFree(ctx);
        return err;
    }
    *out = ctx;
    return PC_OK;
}

/* ---- SIGPIPE ----------------------------------------------------------------------------- */

void pc_redis_pipe_block(pc_redis_pipe_guard_t *guard)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    guard->was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &guard->old);
}

void pc_redis_pipe_unblock(const pc_redis_pipe_guard_t *guard)
{
    sigset_t pipe_set, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigpending(&pending);
    if (!guard->was_pending && sigismember(&pending, SIGPIPE) == 1) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &guard->old, NULL);
}
