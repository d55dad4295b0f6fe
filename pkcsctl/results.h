/*
 * results.h - a consumer of the results topic that waits for the result of one request: it
 * starts where the topic ended when it was made, so it neither misses the result of a request
 * sent afterwards nor scans the topic's history. Used by `pkcsctl revoke --wait`; any command
 * that sends a request and waits for its answer can use it. Main thread only, blocking.
 */
#ifndef PKCSCTL_RESULTS_H
#define PKCSCTL_RESULTS_H

#include "pkcs.pb-c.h"

/* A consumer of the results topic that starts where the topic ended when it was made. */
typedef struct pkcsctl_waiter pkcsctl_waiter_t;

/* pkcsctl_waiter_new connects to brokers and notes the end of every partition of topic, so
 * that a result produced after this call is never missed (make it before sending the request).
 * cmd names the command in messages. *out is the caller's (pkcsctl_waiter_free). Returns 0, or
 * 1 after printing the error. */
int pkcsctl_waiter_new(const char *cmd, const char *brokers, const char *topic, long timeout_s,
                       pkcsctl_waiter_t **out);

/* pkcsctl_waiter_wait reads results until one for request_id arrives (*res, the caller's:
 * pkcs__v1__result__free_unpacked) or timeout_s passes. Returns 0, or 1 after printing why. */
int pkcsctl_waiter_wait(pkcsctl_waiter_t *w, const char *request_id, long timeout_s,
                        Pkcs__V1__Result **res);

/* pkcsctl_waiter_free closes the consumer (NULL allowed). */
void pkcsctl_waiter_free(pkcsctl_waiter_t *w);

#endif
