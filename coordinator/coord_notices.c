/*
 * coord_notices.c - what falls due in the certificates' lives, found in the inventory
 * (lib/cluster/certs.h) every coordinator.notice_interval_ms, so that the upstream system needs
 * no polling:
 *   - a RENEWAL_DUE notice per valid certificate past its profile's renewal threshold, and an
 *     EXPIRING notice per valid certificate within coordinator.expiry_notice_days of its end,
 *     to the notices topic (Notice in proto/pkcs.proto, keyed like requests);
 *   - a superseded certificate still valid at its CA after coordinator.supersede_grace_s (the
 *     renewal's worker lacked the CA, or died between delivering and revoking) is revoked
 *     there, with a "superseded" audit record.
 * Any number of coordinators may run: pc_certs_take_due hands each certificate to one of them
 * and hands it out again after TAKE_AGAIN_MS if that one never finished it. A pass goes through
 * the tenants page by page and each tenant's three queues in turn, one batch (at most
 * TAKE_LIMIT certificates) at a time; a pass that found a full batch starts the next one at
 * once. Loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "certs.h"
#include "clock.h"
#include "coord.h"
#include "kafka.h"
#include "log.h"
#include "request.h"

#define TAKE_LIMIT 200
#define TAKE_AGAIN_MS (10 * 60 * 1000)
#define DAY_MS (24LL * 3600 * 1000)
#define FLUSH_MS 5000

struct pc_coord_notices {
    pc_coord_t *coord;
    pc_kafka_t *kafka; /* a producer only */
    uv_timer_t timer;
    bool busy;    /* a pass is running */
    bool full;    /* this pass took a full batch somewhere: go on at once */
    bool closing; /* no new batch; close when the current one is done */
    char **tenants;
    size_t tenant_count, tenant_next;
    unsigned long long cursor; /* of the next page of tenants; 0 after the last */
    const char *tenant;        /* the one being worked on */
    pc_certs_queue_t queue;
    int outstanding; /* items of the batch not finished */
    int open;        /* the timer and the producer, until closed */
    void (*closed)(void *arg);
    void *closed_arg;
    uint64_t sent[3], failed;
};

/* One certificate of a batch: its notice being delivered, or its revocation under way. */
typedef struct item {
    pc_coord_notices_t *n;
    pc_certs_queue_t queue;
    char tenant[128];
    pc_cert_ref_t ref;
    char user[128], device[128];
} item_t;

static void next_tenant(pc_coord_notices_t *n);
static void take(pc_coord_notices_t *n);

/* The time what is due is reckoned by. Test builds can move it ahead (PC_TEST_NOTICES_AHEAD_MS)
 * so that a test reaches a renewal threshold hours away without waiting for it. */
static int64_t due_now(void)
{
    int64_t now = pc_now_ms();
#ifdef PC_TEST_HOOKS
    const char *ahead = getenv("PC_TEST_NOTICES_AHEAD_MS");
    if (ahead != NULL)
        now += strtoll(ahead, NULL, 10);
#endif
    return now;
}

/* ---- a batch ------------------------------------------------------------------------------ */

static void batch_item_done(pc_coord_notices_t *n)
{
    if (--n->outstanding == 0) {
        n->queue++;
        take(n);
    }
}

static void on_due_done(void *arg, pc_err_t err, const redisReply *reply, const pc_diag_t *diag)
{
    (void)reply;
    item_t *it = arg;
    if (err != PC_OK) /* it comes back after TAKE_AGAIN_MS: a notice may then go out twice */
        pc_log(PC_LOG_WARN, "notice_unrecorded", diag->msg, "tenant_id", it->tenant, "serial",
               it->ref.serial, NULL);
    pc_coord_notices_t *n = it->n;
    free(it);
    batch_item_done(n);
}

/* item_finish: its notice delivered or its revocation audited; it leaves its queue. */
static void item_finish(item_t *it, bool ok)
{
    pc_coord_notices_t *n = it->n;
    if (ok) {
        n->sent[it->queue]++;
        if (pc_certs_due_done(n->coord->redis, it->tenant, it->queue, &it->ref, on_due_done, it) ==
            PC_OK)
            return;
    } else {
        n->failed++;
    }
    free(it);
    batch_item_done(n);
}

static void on_delivered(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    item_t *it = arg;
    if (err != PC_OK)
        pc_log(PC_LOG_WARN, "notice_failed", diag->msg, "tenant_id", it->tenant, "serial",
               it->ref.serial, NULL);
    item_finish(it, err == PC_OK);
}

static item_t *item_new(pc_coord_notices_t *n, const pc_cert_t *c)
{
    item_t *it = calloc(1, sizeof(*it));
    if (it == NULL)
        return NULL;
    it->n = n;
    it->queue = n->queue;
    snprintf(it->tenant, sizeof(it->tenant), "%s", n->tenant);
    snprintf(it->ref.ca, sizeof(it->ref.ca), "%s", c->ca);
    snprintf(it->ref.serial, sizeof(it->ref.serial), "%s", c->serial);
    snprintf(it->user, sizeof(it->user), "%s", c->user_id);
    snprintf(it->device, sizeof(it->device), "%s", c->device_id);
    return it;
}

/* send_notice publishes the notice about c; false when it could not be handed to Kafka. */
static bool send_notice(pc_coord_notices_t *n, const pc_cert_t *c, item_t *it)
{
    Pkcs__V1__Notice notice;
    Pkcs__V1__CertificateRef ref;
    pkcs__v1__notice__init(&notice);
    pkcs__v1__certificate_ref__init(&ref);
    ref.ca_name = it->ref.ca;
    ref.serial_number = it->ref.serial;
    char tenant[128], profile[128], request[128], subject[512];
    snprintf(tenant, sizeof(tenant), "%s", c->tenant[0] != '\0' ? c->tenant : n->tenant);
    snprintf(profile, sizeof(profile), "%s", c->profile_id);
    snprintf(request, sizeof(request), "%s", c->request_id);
    snprintf(subject, sizeof(subject), "%s", c->subject);
    notice.schema_version = PC_SCHEMA_VERSION;
    notice.kind = it->queue == PC_CERTS_DUE_RENEWAL ? PKCS__V1__NOTICE_KIND__RENEWAL_DUE
                                                    : PKCS__V1__NOTICE_KIND__EXPIRING;
    notice.tenant_id = tenant;
    notice.user_id = it->user;
    notice.device_id = it->device;
    notice.profile_id = profile;
    notice.request_id = request;
    notice.certificate = &ref;
    notice.subject = subject;
    notice.not_before_ms = c->not_before_ms;
    notice.not_after_ms = c->not_after_ms;
    notice.renew_at_ms = c->renew_at_ms;
    notice.at_ms = pc_now_ms();
    size_t len = protobuf_c_message_get_packed_size(&notice.base);
    unsigned char *buf = malloc(len == 0 ? 1 : len);
    if (buf == NULL)
        return false;
    protobuf_c_message_pack(&notice.base, buf);
    /* keyed like the requests: one device's notices stay in order */
    const char *key = it->device[0] != '\0' ? it->device : it->user;
    pc_err_t err = pc_kafka_produce(n->kafka, n->coord->cfg->kafka.notices_topic, key, strlen(key),
                                    buf, len, on_delivered, it);
    free(buf);
    return err == PC_OK;
}

/* ---- superseded, not yet revoked ----------------------------------------------------------- */

static void on_audited(void *arg, pc_err_t err, const pc_diag_t *diag)
{
    item_t *it = arg;
    if (err != PC_OK)
        pc_log(PC_LOG_WARN, "audit_failed", diag->msg, "tenant_id", it->tenant, "serial",
               it->ref.serial, NULL);
    item_finish(it, err == PC_OK);
}

static void on_revoked(void *arg, pc_err_t err, X509 *cert, const pc_diag_t *diag)
{
    item_t *it = arg;
    X509_free(cert);
    if (err != PC_OK && err != PC_ERR_NOT_FOUND) {
        pc_log(PC_LOG_WARN, "supersede_failed", diag->msg, "tenant_id", it->tenant, "ca",
               it->ref.ca, "serial", it->ref.serial, NULL);
        item_finish(it, false); /* handed out again after TAKE_AGAIN_MS */
        return;
    }
    pc_log(PC_LOG_INFO, "superseded",
           "a superseded certificate its renewal's worker left valid was revoked at its CA",
           "tenant_id", it->tenant, "user_id", it->user, "device_id", it->device, "ca", it->ref.ca,
           "serial", it->ref.serial, NULL);
    const char *topic = it->n->coord->cfg->kafka.audit_topic;
    if (topic[0] == '\0') {
        item_finish(it, true);
        return;
    }
    pc_audit_t a;
    pc_audit_init(&a, "superseded", NULL, NULL, NULL, "coordinator");
    a.rec.tenant_id = it->tenant;
    a.rec.user_id = it->user;
    a.rec.device_id = it->device;
    a.rec.ca_name = it->ref.ca;
    a.rec.serial_number = it->ref.serial;
    a.rec.outcome = PKCS__V1__STATUS__REVOKED;
    char *json = NULL, key[300];
    size_t len = 0;
    pc_diag_t d;
    if (pc_audit_encode(&a, &json, &len, &d) != PC_OK) {
        pc_log(PC_LOG_ERROR, "audit_failed", d.msg, "serial", it->ref.serial, NULL);
        item_finish(it, true); /* the log line has it */
        return;
    }
    pc_audit_key(&a, key, sizeof(key));
    err = pc_kafka_produce(it->n->kafka, topic, key, strlen(key), json, len, on_audited, it);
    free(json);
    if (err != PC_OK)
        item_finish(it, false);
}

static bool revoke_superseded(pc_coord_notices_t *n, item_t *it)
{
    pc_ca_t *ca = NULL;
    pc_diag_t diag;
    if (pc_engine_find_ca_for(n->coord->engine, it->ref.ca, &ca, &diag) != PC_OK) {
        pc_log(PC_LOG_ERROR, "supersede_failed", diag.msg, "tenant_id", it->tenant, "serial",
               it->ref.serial, NULL);
        return false;
    }
    pc_ca_revoke_t rev = {.serial_hex = it->ref.serial, .reason = PC_REVOKE_SUPERSEDED};
    pc_ca_revoke(ca, &rev, on_revoked, it);
    return true;
}

/* ---- the pass ------------------------------------------------------------------------------ */

static void on_taken(void *arg, pc_err_t err, const pc_cert_t *certs, size_t count, bool more,
                     const pc_diag_t *diag)
{
    (void)more;
    pc_coord_notices_t *n = arg;
    if (err != PC_OK) {
        pc_log(PC_LOG_WARN, "notices_failed", diag->msg, "tenant_id", n->tenant, NULL);
        count = 0;
    }
    n->full |= count == TAKE_LIMIT;
    n->outstanding = 1; /* a hold while the items are sent */
    for (size_t i = 0; i < count; i++) {
        item_t *it = item_new(n, &certs[i]);
        if (it == NULL)
            break;
        n->outstanding++;
        bool sent = n->queue == PC_CERTS_DUE_REVOCATION ? revoke_superseded(n, it)
                                                        : send_notice(n, &certs[i], it);
        if (!sent)
            item_finish(it, false);
    }
    batch_item_done(n);
}

/* take asks for the next batch of the current tenant's current queue. */
static void take(pc_coord_notices_t *n)
{
    const pc_config_coordinator_t *c = &n->coord->cfg->coordinator;
    if (n->queue > PC_CERTS_DUE_REVOCATION || n->closing) {
        next_tenant(n);
        return;
    }
    int64_t now = due_now(), due_by = now;
    if (n->queue == PC_CERTS_DUE_EXPIRY)
        due_by = now + (int64_t)c->expiry_notice_days * DAY_MS;
    else if (n->queue == PC_CERTS_DUE_REVOCATION)
        due_by = now - (int64_t)c->supersede_grace_s * 1000;
    if (pc_certs_take_due(n->coord->redis, n->tenant, n->queue, due_by, TAKE_LIMIT, TAKE_AGAIN_MS,
                          on_taken, n) != PC_OK) {
        n->queue++;
        take(n);
    }
}

static void free_tenants(pc_coord_notices_t *n)
{
    for (size_t i = 0; i < n->tenant_count; i++)
        free(n->tenants[i]);
    free(n->tenants);
    n->tenants = NULL;
    n->tenant_count = n->tenant_next = 0;
}

static void pass_done(pc_coord_notices_t *n);
static void read_tenants(pc_coord_notices_t *n);

static void next_tenant(pc_coord_notices_t *n)
{
    if (n->closing || n->tenant_next == n->tenant_count) {
        free_tenants(n);
        if (!n->closing && n->cursor != 0)
            read_tenants(n);
        else
            pass_done(n);
        return;
    }
    n->tenant = n->tenants[n->tenant_next++];
    n->queue = PC_CERTS_DUE_RENEWAL;
    take(n);
}

static void on_tenants(void *arg, pc_err_t err, const char **tenants, size_t count,
                       unsigned long long next, const pc_diag_t *diag)
{
    pc_coord_notices_t *n = arg;
    if (err != PC_OK) {
        pc_log(PC_LOG_WARN, "notices_failed", diag->msg, NULL);
        pass_done(n);
        return;
    }
    n->cursor = next;
    n->tenants = count > 0 ? calloc(count, sizeof(*n->tenants)) : NULL;
    for (size_t i = 0; n->tenants != NULL && i < count; i++)
        if ((n->tenants[n->tenant_count] = strdup(tenants[i])) != NULL)
            n->tenant_count++;
    next_tenant(n);
}

static void read_tenants(pc_coord_notices_t *n)
{
    if (pc_certs_tenants(n->coord->redis, n->cursor, on_tenants, n) != PC_OK)
        pass_done(n);
}

static void on_timer(uv_timer_t *timer);

static void try_close(pc_coord_notices_t *n);

static void pass_done(pc_coord_notices_t *n)
{
    n->busy = false;
    if (n->closing) {
        try_close(n);
        return;
    }
    /* a full batch: more is due than one pass took, go on at once */
    uint64_t wait = n->full ? 1 : n->coord->cfg->coordinator.notice_interval_ms;
    n->full = false;
    uv_timer_start(&n->timer, on_timer, wait, 0);
}

static void on_timer(uv_timer_t *timer)
{
    pc_coord_notices_t *n = timer->data;
    if (n->busy || n->closing)
        return;
    n->busy = true;
    n->cursor = 0;
    read_tenants(n);
}

/* ---- start and stop ------------------------------------------------------------------------ */

pc_err_t pc_coord_notices_new(pc_coord_t *coord, pc_coord_notices_t **out, pc_diag_t *diag)
{
    *out = NULL;
    pc_coord_notices_t *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return pc_fail(diag, PC_ERR_NOMEM, "out of memory");
    n->coord = coord;
    pc_kafka_security_t security = pc_config_kafka_security(coord->cfg);
    pc_kafka_config_t kc = {
        .brokers = coord->cfg->kafka.brokers,
        .client_id = "pkcs-coordinator",
        .security = &security,
    };
    pc_err_t err = pc_kafka_new(coord->loop, &kc, NULL, n, &n->kafka, diag);
    if (err != PC_OK) {
        free(n);
        return err;
    }
    uv_timer_init(coord->loop, &n->timer);
    n->timer.data = n;
    n->open = 2;
    /* the first pass a moment after start, once Redis is connected */
    uv_timer_start(&n->timer, on_timer, 1000, 0);
    *out = n;
    return PC_OK;
}

static void notices_free(pc_coord_notices_t *n)
{
    void (*closed)(void *) = n->closed;
    void *arg = n->closed_arg;
    free_tenants(n);
    free(n);
    if (closed != NULL)
        closed(arg);
}

static void on_part_closed(pc_coord_notices_t *n)
{
    if (--n->open == 0)
        notices_free(n);
}

static void on_timer_closed(uv_handle_t *handle)
{
    on_part_closed(handle->data);
}

static void on_kafka_closed(void *arg)
{
    on_part_closed(arg);
}

/* try_close closes the timer and the producer once no pass is running (a pass ends its batch
 * first: the producer must outlive its delivery reports). */
static void try_close(pc_coord_notices_t *n)
{
    if (n->busy)
        return;
    uv_close((uv_handle_t *)&n->timer, on_timer_closed);
    pc_kafka_close(n->kafka, FLUSH_MS, on_kafka_closed, n);
}

void pc_coord_notices_close(pc_coord_notices_t *n, void (*closed)(void *arg), void *arg)
{
    if (n == NULL || n->closing) {
        if (n == NULL && closed != NULL)
            closed(arg);
        return;
    }
    n->closing = true;
    n->closed = closed;
    n->closed_arg = arg;
    uv_timer_stop(&n->timer);
    try_close(n);
}
