#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for tests: forwards every request to a real server, except the
paths given with --fail, which get the status and body given instead. It lets a test put a real
cfssl behind a proxy that, say, answers 503 to signing while /info still works.

usage: fault_proxy.py --listen PORT --target http://127.0.0.1:PORT --fail PATH STATUS BODY ...
Binds 127.0.0.1 only; prints its port on stdout once it listens.
"""
import argparse
import http.client
import http.server
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, default=0)
    ap.add_argument("--target", required=True)
    ap.add_argument("--fail", nargs=3, action="append", default=[],
                    metavar=("PATH", "STATUS", "BODY"))
    args = ap.parse_args()
    target = urllib.parse.urlparse(args.target)
    fails = {path: (int(status), body.encode()) for path, status, body in args.fail}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *a):
            pass

        def handle_any(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path in fails:
                status, answer = fails[self.path]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                return
            conn = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request(self.command, self.path, body, headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = handle_any

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.listen), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
