/*
 * redis.h - one Redis connection for the worker's event loop: hiredis async on libuv, our own
 * per-command timeouts, automatic reconnect with backoff and jitter, and Lua scripts run with
 * EVALSHA (loaded on NOSCRIPT). Loop thread only.
 */
#ifndef PC_REDIS_H
#define PC_REDIS_H

#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>
#include <uv.h>

#include "pc_err.h"
#include "redis_target.h"

typedef struct pc_redis pc_redis_t;

typedef struct pc_redis_config {
    const char *host;     /* default "127.0.0.1" */
    int port;             /* default 6379 */
    const char *username; /* ACL user (AUTH username password); NULL: the default user */
    const char *password; /* NULL: no AUTH */
    /* Redis Sentinel: "host:port,host:port" and the name the master is monitored under; when
     * set, host and port are not used: every connection asks the sentinels for the master,
     * checks it with ROLE, and asks again after a disconnect or a READONLY error. */
    const char *sentinels;
    const char *master_name;
    const char *sentinel_password; /* AUTH to the sentinels; NULL: none */
    /* Durable scripts (pc_redis_script_t.durable) wait, after their write, until this many
     * replicas have it (WAIT, bounded by half of command_timeout_ms); fewer is a failure the
     * caller retries. Replication is asynchronous: without this, a failover loses the writes
     * the old master acknowledged last. 0 (default): no waiting. */
    unsigned min_replicas_acks;
    unsigned command_timeout_ms; /* default 2000: a command not answered by then fails */
    unsigned reconnect_min_ms;   /* default 100; doubles up to reconnect_max_ms, with jitter */
    unsigned reconnect_max_ms;   /* default 5000 */
} pc_redis_config_t;

/* Outcome of one command: err is PC_OK with reply set (borrowed, valid during the call; may be
 * a REDIS_REPLY_ERROR, which the caller interprets), or PC_ERR_DEPENDENCY with reply NULL when
 * Redis was unreachable, the connection dropped, or the command timed out. Called exactly
 * once per accepted command, on the loop thread (also when the connection is closed). */
typedef void (*pc_redis_reply_fn)(void *arg, pc_err_t err, const redisReply *reply,
                                  const pc_diag_t *diag);

/* A Lua script; its SHA1 is computed once by pc_redis_script_init. */
typedef struct pc_redis_script {
    const char *name;   /* for logs */
    const char *source; /* Lua */
    bool durable;       /* its writes must reach min_replicas_acks replicas before they count */
    char sha1[41];
} pc_redis_script_t;

/* pc_redis_new starts connecting (and keeps reconnecting) on loop; *out is the caller's
 * (pc_redis_close). Fails only on bad configuration. */
pc_err_t pc_redis_new(uv_loop_t *loop, const pc_redis_config_t *cfg, pc_redis_t **out,
                      pc_diag_t *diag);

/* pc_redis_ready tells whether the connection is up (for /readyz): connected, and Redis has
 * answered AUTH (or PING) on it, and ROLE said master when the sentinels named it. */
bool pc_redis_ready(const pc_redis_t *redis);

/* pc_redis_refused tells whether Redis answered the last login attempt (AUTH, or ROLE) with
 * an error: a wrong redis.username or redis.password, or an ACL that forbids the user to log
 * in, which waiting does not fix. Reset once a connection is ready. */
bool pc_redis_refused(const pc_redis_t *redis);

/* pc_redis_last_error is why the connection last failed ("" if never), borrowed until the next
 * call into the module; no secret in it. */
const char *pc_redis_last_error(const pc_redis_t *redis);

/* pc_redis_on_state sets a callback for connection changes (up = true/false); may be NULL. */
void pc_redis_on_state(pc_redis_t *redis, void (*fn)(void *arg, bool up), void *arg);

/* pc_redis_command sends argc arguments (binary-safe, lengths in argvlen; copied before it
 * returns). While Redis is down the command fails at once with PC_ERR_DEPENDENCY (through cb,
 * not the return value): the caller retries with its own backoff. cb never runs inside this
 * call: a command that cannot be sent is failed from a zero timer on the next loop iteration.
 * A command not answered within command_timeout_ms fails with PC_ERR_DEPENDENCY and the
 * connection is dropped and re-established (a late reply is discarded). So does a write that a
 * demoted master refuses (READONLY): the connection is re-established to the current master.
 * Returns PC_OK when cb will be called; PC_ERR_DEPENDENCY after pc_redis_close,
 * PC_ERR_INVALID_PARAM, PC_ERR_NOMEM. */
pc_err_t pc_redis_command(pc_redis_t *redis, pc_redis_reply_fn cb, void *arg, int argc,
                          const char **argv, const size_t *argvlen);

/* Arguments being built for a command or script: each a copy, freed with pc_args_free. Zero it
 * to start; v and len are what pc_redis_command and pc_redis_eval take. */
typedef struct pc_args {
    const char **v;
    size_t *len;
    int n, cap;
} pc_args_t;

/* pc_args_add appends a copy of len bytes; pc_args_addf a formatted string. PC_ERR_NOMEM. */
pc_err_t pc_args_add(pc_args_t *args, const void *data, size_t len);
pc_err_t pc_args_addf(pc_args_t *args, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* pc_args_free frees every argument and resets args to empty. */
void pc_args_free(pc_args_t *args);

/* pc_redis_script_init computes script->sha1 from its source. */
void pc_redis_script_init(pc_redis_script_t *script);

/* pc_redis_eval runs script with keys then args (binary-safe): argv[0..nkeys) are the keys,
 * argv[nkeys..argc) the arguments. It sends EVALSHA and, on NOSCRIPT, EVAL with the source
 * (which also loads the script). script->sha1 is copied; script->source is borrowed until cb
 * has run (a string literal, typically). Same callback contract as pc_redis_command. */
pc_err_t pc_redis_eval(pc_redis_t *redis, pc_redis_script_t *script, int nkeys, int argc,
                       const char **argv, const size_t *argvlen, pc_redis_reply_fn cb, void *arg);

/* Outcome of pc_redis_check_eviction, on the loop thread: PC_OK (noeviction),
 * PC_ERR_INVALID_PARAM (another policy: diag names it and the fix), PC_ERR_DEPENDENCY (Redis
 * not reachable yet: ask again later), PC_ERR_NOT_SUPPORTED (neither CONFIG GET nor INFO is
 * allowed to this user: the policy cannot be known; diag says which ACL to grant). */
typedef void (*pc_redis_checked_fn)(void *arg, pc_err_t err, const pc_diag_t *diag);

/* pc_redis_check_eviction asks Redis for its maxmemory-policy (CONFIG GET, or INFO memory when
 * an ACL forbids CONFIG) and calls cb once with the verdict: only noeviction keeps the records
 * the cluster cannot lose (the local CA's, the claims) when memory runs out. Returns PC_OK when
 * cb will be called, PC_ERR_NOMEM or PC_ERR_DEPENDENCY (closed) otherwise. */
pc_err_t pc_redis_check_eviction(pc_redis_t *redis, pc_redis_checked_fn cb, void *arg);

/* pc_redis_close fails pending commands with PC_ERR_DEPENDENCY (their callbacks run before it
 * returns, or right after the current reply callback when called from one), disconnects, and
 * frees redis once its handles are closed; closed (may be NULL) is called then, from a close
 * callback on the loop. No state callback runs after pc_redis_close. */
void pc_redis_close(pc_redis_t *redis, void (*closed)(void *arg), void *arg);

#endif
