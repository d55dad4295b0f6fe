/*
 * redis_target.h - where every Redis connection of the project goes and how it logs in, in one
 * place for the loop's connection (redis.c) and the local CA's blocking pool
 * (ca/local/ca_index_redis.c): a fixed host and port, or the master that Redis Sentinel names
 * (SENTINEL get-master-addr-by-name, then ROLE on the master to be sure); AUTH with an ACL user
 * name and password, or a password alone. A target is read-only once made: any thread.
 */
#ifndef PC_REDIS_TARGET_H
#define PC_REDIS_TARGET_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include <hiredis/hiredis.h>

#include "pc_err.h"

typedef struct pc_redis_config pc_redis_config_t;
typedef struct pc_redis_target pc_redis_target_t;

/* Room for a host name or address as text, and for "host:port" in messages. */
#define PC_REDIS_HOST_MAX 256
#define PC_REDIS_WHERE_MAX (PC_REDIS_HOST_MAX + 8)

/* pc_redis_target_new copies what cfg says about the server and the login (host, port,
 * username, password, sentinels, master_name, sentinel_password) into *out, the caller's
 * (pc_redis_target_free, which wipes the passwords). PC_ERR_INVALID_PARAM for a port out of
 * range, a malformed sentinel list, sentinels without master_name or a user name without a
 * password (diag names the redis.* setting); PC_ERR_NOMEM. */
pc_err_t pc_redis_target_new(const pc_redis_config_t *cfg, pc_redis_target_t **out,
                             pc_diag_t *diag);

/* pc_redis_target_free frees t (NULL allowed), wiping the passwords. */
void pc_redis_target_free(pc_redis_target_t *t);

/* pc_redis_target_sentinel tells whether t finds its server through sentinels. */
bool pc_redis_target_sentinel(const pc_redis_target_t *t);

/* pc_redis_target_min_acks is cfg's min_replicas_acks: how many replicas a durable write must
 * reach; pc_redis_target_wait_args fills the WAIT command for it (3 entries, the timeout half
 * of timeout_ms, at least 1 ms) into argv/argvlen, using buf (32 bytes) for the numbers. */
unsigned pc_redis_target_min_acks(const pc_redis_target_t *t);
void pc_redis_target_wait_args(const pc_redis_target_t *t, unsigned timeout_ms, char buf[32],
                               const char *argv[3], size_t argvlen[3]);

/* pc_redis_target_name writes what t points at for messages: "host:port", or "the master
 * \"NAME\" of the sentinels at LIST" (truncated to size). */
void pc_redis_target_name(const pc_redis_target_t *t, char *buf, size_t size);

/* pc_redis_target_locate writes the address to connect to now into host (PC_REDIS_HOST_MAX
 * bytes) and *port: the configured ones, or the master the sentinels name, asked in the
 * configured order, each connection and answer bounded by timeout_ms. PC_ERR_DEPENDENCY when
 * no sentinel answers with an address (diag says what each said). Blocking with sentinels:
 * never on the loop thread; any other thread. */
pc_err_t pc_redis_target_locate(const pc_redis_target_t *t, unsigned timeout_ms, char *host,
                                int *port, pc_diag_t *diag);

/* pc_redis_target_auth fills argv/argvlen (3 entries) with the AUTH command for t's login and
 * returns its argc (2 or 3), or 0 when t has no password. Borrowed strings, valid while t is. */
int pc_redis_target_auth(const pc_redis_target_t *t, const char *argv[3], size_t argvlen[3]);

/* pc_redis_reply_is_master tells whether reply (to ROLE) says "master". */
bool pc_redis_reply_is_master(const redisReply *reply);

/* pc_redis_reply_readonly tells whether reply is the error of a write sent to a replica (the
 * master was demoted by a failover while we were connected), also from inside a script. */
bool pc_redis_reply_readonly(const redisReply *reply);

/* pc_redis_target_connect opens a blocking connection to t (located as above), with
 * timeout_ms on connecting and on every command, logged in, and, with sentinels, checked to
 * be the master (ROLE). where receives "host:port" of the server (PC_REDIS_WHERE_MAX bytes),
 * also on failure when known. PC_ERR_DEPENDENCY: unreachable, not the master, or the login
 * refused (diag names redis.username / redis.password); PC_ERR_NOMEM. Any thread but the
 * loop's; hiredis writes may raise SIGPIPE: call inside pc_redis_pipe_block. */
pc_err_t pc_redis_target_connect(const pc_redis_target_t *t, unsigned timeout_ms,
                                 redisContext **out, char *where, pc_diag_t *diag);

/* hiredis's blocking API writes with write(2), which raises SIGPIPE on a connection the server
 * has reset; the default action ends the process. pc_redis_pipe_block blocks it on the calling
 * thread, pc_redis_pipe_unblock consumes one raised meanwhile and restores the mask, so a
 * dropped connection is an error, never a crash (as libcurl does). */
typedef struct pc_redis_pipe_guard {
    sigset_t old;
    bool was_pending;
} pc_redis_pipe_guard_t;

void pc_redis_pipe_block(pc_redis_pipe_guard_t *guard);
void pc_redis_pipe_unblock(const pc_redis_pipe_guard_t *guard);

#endif
