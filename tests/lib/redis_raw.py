#!/usr/bin/env python3
"""Binary-safe HGET / HSET on a Redis hash for tests that play an attacker with write access to
Redis (redis-cli mangles bytes that are not text). Usage:
  redis_raw.py PORT hget KEY FIELD > FILE
  redis_raw.py PORT hset KEY FIELD < FILE
"""
import socket
import sys


def command(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else a.encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)
    f = sock.makefile("rb")
    line = f.readline()
    if line.startswith(b"$"):
        n = int(line[1:])
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    if line.startswith(b"-"):
        sys.exit("redis: " + line.decode().strip())
    return line.strip()


def main():
    port, op, key, field = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    with socket.create_connection(("127.0.0.1", port)) as sock:
        if op == "hget":
            value = command(sock, "HGET", key, field)
            if value is None:
                sys.exit("no field %s in %s" % (field, key))
            sys.stdout.buffer.write(value)
        elif op == "hset":
            command(sock, "HSET", key, field, sys.stdin.buffer.read())
        else:
            sys.exit("unknown operation " + op)


if __name__ == "__main__":
    main()
