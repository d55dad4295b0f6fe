/*
 * pc_err.h - the project's one error enum, and the diagnostic text that travels with it.
 *
 * Every fallible function returns pc_err_t and, when given a pc_diag_t, fills it with a
 * sentence for a user or operator: what failed, with which input, what to do. The codes split
 * like the Intune connector's: non-retryable ones describe the request, retryable ones describe
 * the world (a CA or a dependency that may come back). Thread-safe: no global state.
 */
#ifndef PC_ERR_H
#define PC_ERR_H

#include <stdbool.h>
#include <stddef.h>

typedef enum pc_err {
    PC_OK = 0,
    /* non-retryable: the request itself is wrong or cannot be served */
    PC_ERR_BAD_MESSAGE,     /* undecodable or structurally invalid message */
    PC_ERR_INVALID_PARAM,   /* a parameter is missing, unknown or out of range */
    PC_ERR_POLICY,          /* the certificate template forbids what was asked */
    PC_ERR_CRYPTO,          /* a cryptographic operation failed */
    PC_ERR_NOT_FOUND,       /* certificate (or other named object) not found */
    PC_ERR_CONFLICT,        /* the request conflicts with recorded state */
    PC_ERR_NOT_SUPPORTED,   /* a kind, algorithm or option this build does not do */
    PC_ERR_TOO_LARGE,       /* a field or message over its limit */
    PC_ERR_UNAUTHENTICATED, /* unsigned or badly signed upstream request */
    PC_ERR_EXPIRED,         /* the request's deadline has passed */
    PC_ERR_IO,              /* local file could not be read or written */
    PC_ERR_NOMEM,           /* out of memory */
    /* retryable: the world may change */
    PC_ERR_CA_UNAVAILABLE, /* CA unreachable or not answering */
    PC_ERR_CA_BUSY,        /* CA asked us to slow down */
    PC_ERR_CA_AUTH,        /* CA refused our credentials (may be a rotation in progress) */
    PC_ERR_DEPENDENCY,     /* Kafka or Redis unavailable */
    PC_ERR__COUNT
} pc_err_t;

/* Room for one operator-facing sentence; longer text is truncated, never overflowed. */
typedef struct pc_diag {
    char msg[512];
} pc_diag_t;

/* pc_strerror returns a static, stable, lower-case name of err (e.g. "invalid parameter"). */
const char *pc_strerror(pc_err_t err);

/* pc_err_code_name returns the stable upper-case code used in results and logs
 * (e.g. "INVALID_PARAMETERS"). */
const char *pc_err_code_name(pc_err_t err);

/* pc_err_retryable tells whether a request failing with err should be tried again later. */
bool pc_err_retryable(pc_err_t err);

/* pc_fail formats a message into diag (which may be NULL) and returns err, so that a failure
 * reads as one line: `return pc_fail(diag, PC_ERR_INVALID_PARAM, "unknown variable %s", v);` */
pc_err_t pc_fail(pc_diag_t *diag, pc_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pc_fail_ssl is pc_fail that appends OpenSSL's first queued error (and clears the queue).
 * Use it at the boundary where an OpenSSL call failed. */
pc_err_t pc_fail_ssl(pc_diag_t *diag, pc_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* pc_diag_prefix prepends "prefix: " to the message already in diag (NULL-safe), to add
 * context as an error travels up ("subject: ..."). */
void pc_diag_prefix(pc_diag_t *diag, const char *prefix);

#endif
