#!/usr/bin/env python3
"""A misbehaving ACME CA for tests/cli/acme.sh (pebble cannot misbehave on
request).  HTTPS on 127.0.0.1 only.  The first path segment picks the fault:
  /bad-json/dir       a directory that is not JSON
  /wrong-ctype/dir    a directory served as text/html
  /hang/dir           never answers (the client's timeout must end it)
  /redirect/dir       302 to another host
  /other-origin/dir   a directory whose newNonce is on another host
  /big/dir            a 2 MiB answer
  /problem/dir        a working directory and nonce; newAccount answers a
                      problem document with subproblems
  /ratelimited/dir    newAccount answers rateLimited with a Retry-After
  /wrongkey/dir       a whole order (nothing checked) whose certificate is
                      the file LEAF: one for another key than the request's
  /truncated/dir      the same, with the chain cut after 300 bytes
Usage: fake-ca.py PORT CERT KEY [LEAF]
"""
import http.server, json, ssl, sys, time

PORT, CERT, KEY = int(sys.argv[1]), sys.argv[2], sys.argv[3]
LEAF = open(sys.argv[4], "rb").read() if len(sys.argv) > 4 else b""
BASE = "https://127.0.0.1:%d" % PORT


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        sys.stderr.write("fake-ca: " + (a[0] % a[1:]) + "\n")

    def send(self, code, ctype, body, extra=None):
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def directory(self, mode):
        d = {k: "%s/%s/%s" % (BASE, mode, k) for k in ("newNonce", "newAccount", "newOrder")}
        if mode == "other-origin":
            d["newNonce"] = "https://localhost.invalid:%d/nonce" % PORT
        return json.dumps(d).encode()

    def route(self):
        parts = self.path.strip("/").split("/")
        mode, what = parts[0], parts[-1]
        if mode == "hang":
            time.sleep(60)
            return
        if what == "dir":
            if mode == "bad-json":
                return self.send(200, "application/json", b'{"newNonce": "https://')
            if mode == "wrong-ctype":
                return self.send(200, "text/html", b"<html>login portal</html>")
            if mode == "redirect":
                return self.send(302, "text/plain", b"", {"Location": "https://example.invalid/dir"})
            if mode == "big":
                return self.send(200, "application/json", b" " * (2 << 20))
            return self.send(200, "application/json", self.directory(mode))
        if what == "newNonce":
            return self.send(200, None, b"", {"Replay-Nonce": "bm9uY2U", "Cache-Control": "no-store"})
        if self.command == "POST":
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
        nonce = {"Replay-Nonce": "bm9uY2U%d" % time.monotonic_ns()}
        u = lambda x: "%s/%s/%s" % (BASE, mode, x)
        if mode in ("wrongkey", "truncated"):
            if what == "newAccount":
                return self.send(201, "application/json", b'{"status": "valid"}',
                                 dict(nonce, Location=u("acct")))
            if what == "newOrder":
                return self.send(201, "application/json", json.dumps(
                    {"status": "pending", "authorizations": [u("authz")],
                     "finalize": u("finalize")}).encode(), dict(nonce, Location=u("order")))
            if what == "authz":
                return self.send(200, "application/json", b'{"status": "valid"}', nonce)
            if what in ("finalize", "order"):
                return self.send(200, "application/json", json.dumps(
                    {"status": "valid", "certificate": u("cert")}).encode(), nonce)
            if what == "cert":
                body = LEAF if mode == "wrongkey" else LEAF[:300]
                return self.send(200, "application/pem-certificate-chain", body, nonce)
        if what == "newAccount" and mode == "ratelimited":
            doc = {"type": "urn:ietf:params:acme:error:rateLimited",
                   "detail": "too many new accounts"}
            return self.send(429, "application/problem+json", json.dumps(doc).encode(),
                             dict(nonce, **{"Retry-After": "3600"}))
        if what == "newAccount":
            doc = {"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                   "detail": "policy forbids this account",
                   "subproblems": [{"type": "urn:ietf:params:acme:error:invalidContact",
                                    "detail": "no such mailbox",
                                    "identifier": {"type": "dns", "value": "bad.example"}}]}
            return self.send(403, "application/problem+json", json.dumps(doc).encode(),
                             {"Replay-Nonce": "bm9uY2Uy"})
        self.send(404, "text/plain", b"not here")

    do_GET = do_HEAD = do_POST = route


srv = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H)
srv.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
