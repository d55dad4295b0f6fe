/*
 * redis_fixture.h - a real redis-server for unit tests, started on 127.0.0.1 at a free port in
 * a temporary directory, stopped (and the directory removed) by fixture_stop or, if a test
 * aborts, at exit. Also: run a uv loop until a flag is set, with a safety deadline.
 * Header-only (static functions) because each test_*.c builds into its own executable.
 */
#ifndef PC_TEST_REDIS_FIXTURE_H
#define PC_TEST_REDIS_FIXTURE_H

#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <uv.h>

typedef struct redis_fixture {
    pid_t pid;
    int port;
    char dir[64];
} redis_fixture_t;

static redis_fixture_t fixture_redis;
static bool fixture_atexit_set;

static void fixture_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* fixture_free_port asks the kernel for a free port (redis cannot bind port 0 itself). */
static int fixture_free_port(void)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof(sa);
    int port = -1;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* fixture_ping: blocking PING with a short receive timeout; the test may block, the code
 * under test may not. */
static bool fixture_ping(int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {0, 200000};
    char buf[16] = "";
    bool ok = false;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && write(fd, "PING\r\n", 6) == 6 &&
        read(fd, buf, sizeof(buf) - 1) > 0)
        ok = strncmp(buf, "+PONG", 5) == 0;
    close(fd);
    return ok;
}

static void fixture_kill(redis_fixture_t *f)
{
    if (f->pid <= 0)
        return;
    kill(f->pid, SIGCONT); /* a stopped server cannot handle SIGTERM */
    kill(f->pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(f->pid, NULL, WNOHANG) == f->pid)
            goto out_reaped;
        fixture_sleep_ms(10);
    }
    kill(f->pid, SIGKILL);
    waitpid(f->pid, NULL, 0);
out_reaped:
    f->pid = 0;
}

static void fixture_rmdir(redis_fixture_t *f)
{
    DIR *d;
    struct dirent *de;
    char path[512];

    if (f->dir[0] == '\0')
        return;
    d = opendir(f->dir);
    if (d != NULL) {
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%s", f->dir, de->d_name);
            unlink(path);
        }
        closedir(d);
    }
    rmdir(f->dir);
    f->dir[0] = '\0';
}

static void fixture_stop(redis_fixture_t *f)
{
    fixture_kill(f);
    fixture_rmdir(f);
}

static void fixture_atexit(void)
{
    fixture_stop(&fixture_redis);
}

/* fixture_start starts redis-server on f->port (0: pick a free one) and waits for PONG.
 * Returns 0 on success. */
static int fixture_start(redis_fixture_t *f)
{
    char port[16], logfile[128];

    if (!fixture_atexit_set) {
        atexit(fixture_atexit);
        fixture_atexit_set = true;
    }
    if (f->dir[0] == '\0') {
        snprintf(f->dir, sizeof(f->dir), "/tmp/pc-redis-test-XXXXXX");
        if (mkdtemp(f->dir) == NULL) {
            f->dir[0] = '\0';
            return -1;
        }
    }
    if (f->port == 0)
        f->port = fixture_free_port();
    if (f->port <= 0)
        return -1;
    snprintf(port, sizeof(port), "%d", f->port);
    snprintf(logfile, sizeof(logfile), "%s/redis.log", f->dir);
    f->pid = fork();
    if (f->pid < 0)
        return -1;
    if (f->pid == 0) {
        execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--dir", f->dir, "--daemonize", "no", "--logfile", logfile,
               (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (fixture_ping(f->port))
            return 0;
        if (waitpid(f->pid, NULL, WNOHANG) == f->pid) {
            f->pid = 0;
            return -1;
        }
        fixture_sleep_ms(10);
    }
    return -1;
}

/* fixture_revive: per-test setup, so that a test that failed with the server stopped or
 * killed does not fail the ones after it. */
static int fixture_revive(void **state)
{
    (void)state;
    if (fixture_redis.pid > 0) {
        kill(fixture_redis.pid, SIGCONT);
        return 0;
    }
    return fixture_start(&fixture_redis);
}

static void fixture_tick(uv_timer_t *timer)
{
    (void)timer;
}

/* run_until runs loop until *flag is true or timeout_ms passed; returns *flag. */
static bool run_until(uv_loop_t *loop, const bool *flag, unsigned timeout_ms)
{
    uv_timer_t tick;
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, fixture_tick, 5, 5); /* so UV_RUN_ONCE returns while idle */
    while (!*flag && uv_hrtime() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

/* run_for runs loop for ms milliseconds. */
static void run_for(uv_loop_t *loop, unsigned ms)
{
    bool never = false;
    run_until(loop, &never, ms);
}

/* ms_since: milliseconds elapsed since t0 (uv_hrtime). */
static uint64_t ms_since(uint64_t t0)
{
    return (uv_hrtime() - t0) / 1000000u;
}

#endif
