/*
 * coord_api.h - pkcsctl's client of the coordinator's HTTP API (status, certs): where the
 * coordinator is, and one GET whose JSON answer is parsed, with errors that say what to do.
 * Blocking libcurl easy calls, right for one-shot commands; the caller has run
 * curl_global_init. Main thread only.
 */
#ifndef PKCSCTL_COORD_API_H
#define PKCSCTL_COORD_API_H

#include <stddef.h>

#include <jansson.h>

/* The coordinator's address when neither --coordinator nor $PC_COORDINATOR_URL names one. */
#define PKCSCTL_COORDINATOR_URL "http://127.0.0.1:9470"

/* pkcsctl_coord_base writes the API root to base: given (--coordinator), else
 * $PC_COORDINATOR_URL, else PKCSCTL_COORDINATOR_URL, without trailing slashes ("host:port/"
 * and "host:port" name the same root). */
void pkcsctl_coord_base(const char *given, char *base, size_t size);

/* pkcsctl_coord_get GETs base + path (path percent-encoded by the caller) and parses the JSON
 * answer into *out (the caller's: json_decref). With status NULL only a 200 is an answer;
 * otherwise any JSON answer is, and *status is its HTTP status (the coordinator's errors are
 * {"error": TEXT}). Returns 0, or 1 after printing what went wrong for cmd and what to do
 * (coordinator unreachable, not JSON, too large, or another status while status is NULL). */
int pkcsctl_coord_get(const char *cmd, const char *base, const char *path, long timeout_s,
                      json_t **out, long *status);

#endif
