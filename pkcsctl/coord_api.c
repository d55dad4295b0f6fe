/*
 * coord_api.c - one GET of the coordinator's JSON API (coord_api.h): the only place pkcsctl
 * talks HTTP, so that every command reports an unreachable or strange coordinator the same way.
 * Main thread only.
 */
#include "coord_api.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "common.h"

#define BODY_MAX (16u * 1024 * 1024)

/* A response body as it arrives. */
typedef struct body {
    char *data;
    size_t len;
    bool too_large;
} body_t;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t n = size * nmemb;
    if (b->len + n > BODY_MAX) {
        b->too_large = true;
        return 0;
    }
    char *grown = realloc(b->data, b->len + n + 1);
    if (grown == NULL)
        return 0;
    memcpy(grown + b->len, ptr, n);
    b->data = grown;
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

void pkcsctl_coord_base(const char *given, char *base, size_t size)
{
    const char *url = given != NULL ? given : getenv("PC_COORDINATOR_URL");
    if (url == NULL || url[0] == '\0')
        url = PKCSCTL_COORDINATOR_URL;
    snprintf(base, size, "%s", url);
    for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
        base[n - 1] = '\0';
}

int pkcsctl_coord_get(const char *cmd, const char *base, const char *path, long timeout_s,
                      json_t **out, long *status)
{
    char url[4096], errbuf[CURL_ERROR_SIZE] = "";
    body_t body = {0};
    long code = 0;
    int rc = 1;
    json_error_t jerr;
    *out = NULL;
    if ((size_t)snprintf(url, sizeof(url), "%s%s", base, path) >= sizeof(url))
        return pkcsctl_error(cmd, "the URL %s%.40s... is too long", base, path);
    CURL *curl = curl_easy_init();
    if (curl == NULL)
        return pkcsctl_error(cmd, "cannot start an HTTP client (libcurl)");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "pkcsctl/" PC_VERSION);
    CURLcode res = curl_easy_perform(curl);
    if (res != CURLE_OK && !body.too_large) {
        pkcsctl_error(cmd,
                      "cannot reach the coordinator at %s: %s; start it with pkcs-coordinator "
                      "--config FILE, or point --coordinator (or PC_COORDINATOR_URL) at it",
                      url, errbuf[0] ? errbuf : curl_easy_strerror(res));
        goto out_free_body;
    }
    if (body.too_large) {
        pkcsctl_error(cmd, "%s answered with more than %u bytes; is that the coordinator?", url,
                      BODY_MAX);
        goto out_free_body;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200 && status == NULL) {
        for (size_t i = 0; i < body.len; i++)
            if (body.data[i] == '\n' || body.data[i] == '\r')
                body.data[i] = ' ';
        pkcsctl_error(cmd,
                      "%s answered HTTP %ld (%.120s); check that --coordinator names the "
                      "coordinator's HTTP address",
                      url, code, body.data ? body.data : "");
        goto out_free_body;
    }
    if ((*out = json_loadb(body.data ? body.data : "", body.len, 0, &jerr)) == NULL) {
        pkcsctl_error(cmd,
                      "%s did not answer JSON (HTTP %ld: %s, line %d); is that the "
                      "coordinator, and a version that has this endpoint?",
                      url, code, jerr.text, jerr.line);
        goto out_free_body;
    }
    if (status != NULL)
        *status = code;
    rc = 0;
out_free_body:
    free(body.data);
    curl_easy_cleanup(curl);
    return rc;
}
