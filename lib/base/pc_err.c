/*
 * pc_err.c - names of the error codes and the helpers that fill a pc_diag_t.
 * Runs on any thread; touches only the caller's diag and OpenSSL's thread-local error queue.
 */
#include "pc_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

static const struct {
    const char *text;
    const char *code;
} names[PC_ERR__COUNT] = {
    [PC_OK] = {"success", "NONE"},
    [PC_ERR_BAD_MESSAGE] = {"bad message", "BAD_MESSAGE"},
    [PC_ERR_INVALID_PARAM] = {"invalid parameter", "INVALID_PARAMETERS"},
    [PC_ERR_POLICY] = {"template policy violation", "POLICY_VIOLATION"},
    [PC_ERR_CRYPTO] = {"cryptographic failure", "CRYPTO_FAILURE"},
    [PC_ERR_NOT_FOUND] = {"not found", "CERTIFICATE_NOT_FOUND"},
    [PC_ERR_CONFLICT] = {"conflict", "CONFLICT"},
    [PC_ERR_NOT_SUPPORTED] = {"not supported", "NOT_SUPPORTED"},
    [PC_ERR_TOO_LARGE] = {"too large", "TOO_LARGE"},
    [PC_ERR_UNAUTHENTICATED] = {"unauthenticated request", "UNAUTHENTICATED"},
    [PC_ERR_EXPIRED] = {"deadline exceeded", "DEADLINE_EXCEEDED"},
    [PC_ERR_IO] = {"i/o error", "IO_ERROR"},
    [PC_ERR_NOMEM] = {"out of memory", "OUT_OF_MEMORY"},
    [PC_ERR_CA_UNAVAILABLE] = {"CA unavailable", "CA_UNAVAILABLE"},
    [PC_ERR_CA_BUSY] = {"CA busy", "CA_BUSY"},
    [PC_ERR_CA_AUTH] = {"CA authentication failed", "AUTHENTICATION"},
    [PC_ERR_DEPENDENCY] = {"dependency unavailable", "DEPENDENCY_DOWN"},
};

const char *pc_strerror(pc_err_t err)
{
    if ((unsigned)err >= PC_ERR__COUNT)
        return "unknown error";
    return names[err].text;
}

const char *pc_err_code_name(pc_err_t err)
{
    if ((unsigned)err >= PC_ERR__COUNT)
        return "UNKNOWN";
    return names[err].code;
}

bool pc_err_retryable(pc_err_t err)
{
    return err == PC_ERR_CA_UNAVAILABLE || err == PC_ERR_CA_BUSY || err == PC_ERR_CA_AUTH ||
           err == PC_ERR_DEPENDENCY;
}

pc_err_t pc_fail(pc_diag_t *diag, pc_err_t err, const char *fmt, ...)
{
    if (diag != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
        va_end(ap);
    }
    return err;
}

pc_err_t pc_fail_ssl(pc_diag_t *diag, pc_err_t err, const char *fmt, ...)
{
    unsigned long e = ERR_peek_error();
    if (diag != NULL) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(diag->msg, sizeof(diag->msg), fmt, ap);
        va_end(ap);
        if (e != 0 && n >= 0 && (size_t)n < sizeof(diag->msg) - 3) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof(buf));
            snprintf(diag->msg + n, sizeof(diag->msg) - (size_t)n, " (%s)", buf);
        }
    }
    ERR_clear_error();
    return err;
}

void pc_diag_prefix(pc_diag_t *diag, const char *prefix)
{
    if (diag == NULL || prefix == NULL)
        return;
    /* "prefix: " goes in front; the tail of an over-long message is cut, never overflowed. */
    size_t cap = sizeof(diag->msg) - 1;
    size_t plen = strlen(prefix);
    size_t mlen = strnlen(diag->msg, cap);
    if (plen + 2 > cap)
        plen = cap - 2;
    size_t keep = mlen + plen + 2 > cap ? cap - plen - 2 : mlen;
    memmove(diag->msg + plen + 2, diag->msg, keep);
    memcpy(diag->msg, prefix, plen);
    diag->msg[plen] = ':';
    diag->msg[plen + 1] = ' ';
    diag->msg[plen + 2 + keep] = '\0';
}
