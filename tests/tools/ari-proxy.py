#!/usr/bin/env python3
"""A stand-in for ACME Renewal Information (RFC 9773) in front of pebble,
for tests/cli/acme-account.sh: pebble 2.4 has no renewalInfo.  HTTPS on
127.0.0.1 only.
  GET /dir                 pebble's directory, its URLs moved onto this
                           origin, with "renewalInfo" added
  GET /renewal-info/ID     ID = base64url(AKI keyIdentifier) "." base64url(
                           serial): pebble's certificate of that serial
                           (management /cert-status-by-serial/) must exist
                           and carry that AKI; the answer is the last third
                           of its validity as suggestedWindow, Retry-After
                           21600, and an explanationURL
  GET /MODE/dir            the same directory whose renewalInfo answers
                           in a fixed way: MODE bad-date (a start that is no RFC
                           3339 date), backwards (an end before the
                           start), no-window (no suggestedWindow); and
                           now: a window open now, for any id
  anything else            404 (nothing else is proxied)
Usage: ari-proxy.py PORT CERT KEY PEBBLE-DIR-URL PEBBLE-MGMT-URL CA-FILE
"""
import base64, datetime, http.server, json, ssl, sys, urllib.request

from cryptography import x509

PORT, CERT, KEY, DIR, MGMT, CAFILE = sys.argv[1:7]
PORT = int(PORT)
BASE = "https://127.0.0.1:%d" % PORT
CTX = ssl.create_default_context(cafile=CAFILE)


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def fetch(url):
    with urllib.request.urlopen(url, context=CTX, timeout=10) as r:
        return r.read()


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


BAD = {
    "bad-date": {"suggestedWindow": {"start": "next tuesday", "end": "2030-01-01T00:00:00Z"}},
    "backwards": {"suggestedWindow": {"start": "2030-01-02T00:00:00Z", "end": "2030-01-01T00:00:00Z"}},
    "no-window": {"explanationURL": "https://127.0.0.1/why"},
}
NOW = datetime.datetime.now(datetime.timezone.utc)
# /now/dir: a window open now (as before a mass revocation)
BAD["now"] = {"suggestedWindow": {"start": rfc3339(NOW - datetime.timedelta(hours=1)),
                                  "end": rfc3339(NOW + datetime.timedelta(hours=1))}}


class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        sys.stderr.write("ari-proxy: " + (a[0] % a[1:]) + "\n")

    def send(self, code, ctype, body, extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def problem(self, code, detail):
        doc = {"type": "urn:ietf:params:acme:error:malformed", "detail": detail}
        self.send(code, "application/problem+json", json.dumps(doc).encode())

    def do_GET(self):
        mode = self.path.split("/")[1]
        if self.path == "/dir" or (mode in BAD and self.path == "/%s/dir" % mode):
            d = json.loads(fetch(DIR))
            origin = "/".join(DIR.split("/")[:3])
            d = {k: (v.replace(origin, BASE) if isinstance(v, str) else v) for k, v in d.items()}
            d["renewalInfo"] = BASE + ("/renewal-info/" if self.path == "/dir" else "/%s/info/" % mode)
            return self.send(200, "application/json", json.dumps(d).encode())
        if mode in BAD and self.path.startswith("/%s/info/" % mode):
            return self.send(200, "application/json", json.dumps(BAD[mode]).encode())
        if not self.path.startswith("/renewal-info/"):
            return self.send(404, "text/plain", b"not here")
        try:
            aki, serial = self.path[len("/renewal-info/"):].split(".")
            aki, serial = b64d(aki), b64d(serial)
        except Exception:
            return self.problem(400, "not an ARI certificate id")
        try:
            st = json.loads(fetch("%s/cert-status-by-serial/%x" % (MGMT, int.from_bytes(serial, "big"))))
        except Exception:
            return self.problem(404, "no certificate of that serial")
        cert = x509.load_pem_x509_certificate(st["Certificate"].encode())
        try:
            mine = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        except x509.ExtensionNotFound:
            mine = None
        if mine != aki:
            return self.problem(404, "the certificate of that serial has another AKI")
        nb, na = cert.not_valid_before_utc, cert.not_valid_after_utc
        start = nb + (na - nb) * 2 / 3
        body = {"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(na - (na - nb) / 10)},
                "explanationURL": BASE + "/why"}
        self.send(200, "application/json", json.dumps(body).encode(), {"Retry-After": "21600"})


srv = http.server.ThreadingHTTPServer(("127.0.0.1", PORT), H)
srv.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(CERT, KEY)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
srv.serve_forever()
