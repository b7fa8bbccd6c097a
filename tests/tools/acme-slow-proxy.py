#!/usr/bin/env python3
"""A stand-in for an ACME CA that takes its time to issue, in front of
pebble, for tests/cli/track-ari.sh: pebble 2.4 issues at once, so an order
never stays "processing" after finalize.  HTTPS on 127.0.0.1 only.

Every request is passed to pebble as it came (method, path, headers with
Host, body): pebble builds its URLs and checks the JWS "url" from the Host
header, so the client talks to this origin throughout.  What it changes:
after an order was finalized, its first SLOW answers (POST-as-GET of
/my-order/ID) say "processing" with Retry-After: 1 and no certificate URL.
Every request is logged on stderr ("slow-proxy: METHOD PATH [processing]").
Usage: acme-slow-proxy.py PORT CERT KEY PEBBLE-PORT CA-FILE SLOW
"""
import http.client, http.server, json, ssl, sys, threading

PORT, CERT, KEY, PEBBLE, CAFILE, SLOW = sys.argv[1:7]
PORT, PEBBLE, SLOW = int(PORT), int(PEBBLE), int(SLOW)
CTX = ssl.create_default_context(cafile=CAFILE)
LOCK = threading.Lock()
FINALIZED = set()   # order ids finalized
ANSWERED = {}       # order id -> "processing" answers given


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        c = http.client.HTTPSConnection("127.0.0.1", PEBBLE, context=CTX, timeout=30)
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "content-length")}
        c.request(self.command, self.path, body=body if body else None, headers=hdrs)
        r = c.getresponse()
        data, status, rh = r.read(), r.status, r.getheaders()
        c.close()
        note = ""
        parts = self.path.split("/")
        if self.command == "POST" and len(parts) > 2 and parts[1] == "finalize-order":
            with LOCK:
                FINALIZED.add(parts[2])
        if self.command == "POST" and len(parts) > 2 and parts[1] == "my-order" and status == 200:
            with LOCK:
                slow = parts[2] in FINALIZED and ANSWERED.get(parts[2], 0) < SLOW
                if slow:
                    ANSWERED[parts[2]] = ANSWERED.get(parts[2], 0) + 1
            if slow:
                o = json.loads(data)
                o["status"] = "processing"
                o.pop("certificate", None)
                data = json.dumps(o).encode()
                rh = [(k, v) for k, v in rh if k.lower() != "retry-after"] + [("Retry-After", "1")]
                note = " processing"
        sys.stderr.write("slow-proxy: %s %s%s\n" % (self.command, self.path, note))
        sys.stderr.flush()
        self.send_response(status)
        for k, v in rh:
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = relay


srv = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H)
srv.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
