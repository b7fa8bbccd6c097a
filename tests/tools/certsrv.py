#!/usr/bin/env python3
"""A stand-in for Microsoft AD CS web enrollment (certsrv) for
tests/cli/ca-adcs.sh.  It is NOT a Windows server: it implements the
documented form of certfnsh.asp (Mode=newreq, CertRequest, CertAttrib=
CertificateTemplate:NAME, TargetStoreFlags, SaveCert) and the downloads
certnew.cer / certnew.p7b (?ReqID=N|CACert&Enc=b64), issues with the openssl
CLI from the CA in CADIR (ca.pem, ca.key), and asks for HTTP Basic
authentication (user and password from the command line's PWFILE), or
NTLM (NTLMv2, the response checked against the same password) when the
first path segment starts with "ntlm-" (/ntlm-ok/... behaves as /ok/...),
or Negotiate (SPNEGO/Kerberos: the client's token accepted with
python3-gssapi against the keytab in $KRB5_KTNAME, the client principal
must be KRBUSER) when it starts with "krb-".  Each answers 401 with its
WWW-Authenticate challenge first.
HTTPS on 127.0.0.1 only (plain HTTP when CERT is "-", for the
--insecure-http test).  The first path segment picks the behaviour:
  /ok/certsrv/...          issues at once (template WebServer only)
  /pending/certsrv/...     holds the request ("Your Request Id is N") until
                           CADIR/approve-N exists
  /denied/certsrv/...      denies, with a disposition message
  /error/certsrv/...       certfnsh.asp answers HTTP 500 with an error page
  /wrong-ctype/certsrv/... certnew.p7b is sent as text/plain
  /otherkey/certsrv/...    certnew.p7b holds CADIR/other.pem (another key)
  /truncated/certsrv/...   certnew.p7b cut after 300 bytes
  /redirect/certsrv/...    certfnsh.asp redirects to another host
  /hang/certsrv/...        never answers
A CertRequest that is a CMS SignedData (an MS renewal) is unwrapped with
'openssl cms -verify' (signature checked with the signer's certificate).
Every request is logged to stderr, with the form fields (not the request).
Usage: certsrv.py PORT CERT KEY CADIR USER PWFILE [KRBUSER]
"""
import base64, hmac, http.server, os, ssl, struct, subprocess, sys, tempfile, time, urllib.parse

PORT, CERT, KEY, CADIR, USER, PWFILE = sys.argv[1:7]
KRBUSER = sys.argv[7] if len(sys.argv) > 7 else None
PASSWORD = open(PWFILE).read().strip()
def md4(msg):
    """MD4 (RFC 1320): OpenSSL 3 leaves it out of its default provider."""
    def f(x, y, z): return (x & y) | (~x & z)
    def g(x, y, z): return (x & y) | (x & z) | (y & z)
    def h(x, y, z): return x ^ y ^ z
    def rol(v, n): return ((v << n) | (v >> (32 - n))) & 0xffffffff
    n = len(msg)
    msg += b"\x80" + b"\0" * ((55 - n) % 64) + struct.pack("<Q", n * 8)
    a, b, c, d = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
    for off in range(0, len(msg), 64):
        x = struct.unpack("<16I", msg[off:off + 64])
        aa, bb, cc, dd = a, b, c, d
        for i in range(16):
            k = [0, 3, 2, 1][i % 4]
            r = [3, 7, 11, 19][i % 4]
            v = [a, b, c, d]
            v[k] = rol((v[k] + f(v[(k + 1) % 4], v[(k + 2) % 4], v[(k + 3) % 4]) + x[i]) & 0xffffffff, r)
            a, b, c, d = v
        for i in range(16):
            k = [0, 3, 2, 1][i % 4]
            r = [3, 5, 9, 13][i % 4]
            idx = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15][i]
            v = [a, b, c, d]
            v[k] = rol((v[k] + g(v[(k + 1) % 4], v[(k + 2) % 4], v[(k + 3) % 4]) + x[idx] + 0x5a827999) & 0xffffffff, r)
            a, b, c, d = v
        for i in range(16):
            k = [0, 3, 2, 1][i % 4]
            r = [3, 9, 11, 15][i % 4]
            idx = [0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15][i]
            v = [a, b, c, d]
            v[k] = rol((v[k] + h(v[(k + 1) % 4], v[(k + 2) % 4], v[(k + 3) % 4]) + x[idx] + 0x6ed9eba1) & 0xffffffff, r)
            a, b, c, d = v
        a, b, c, d = (a + aa) & 0xffffffff, (b + bb) & 0xffffffff, (c + cc) & 0xffffffff, (d + dd) & 0xffffffff
    return struct.pack("<4I", a, b, c, d)


assert md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"

NTLM_FLAGS = 0x00000001 | 0x00000200 | 0x00080000 | 0x00800000 | 0x20000000 | 0x80000000


def ntlm_type2(challenge):
    """A CHALLENGE_MESSAGE with target info (so the client answers NTLMv2)."""
    target = "CORP".encode("utf-16-le")
    info = struct.pack("<HH", 2, len(target)) + target + struct.pack("<HH", 0, 0)
    head = 48
    return (b"NTLMSSP\0" + struct.pack("<I", 2) + struct.pack("<HHI", len(target), len(target), head)
            + struct.pack("<I", NTLM_FLAGS) + challenge + b"\0" * 8
            + struct.pack("<HHI", len(info), len(info), head + len(target)) + target + info)


def ntlm_field(msg, off):
    ln, _, at = struct.unpack("<HHI", msg[off:off + 8])
    if at + ln > len(msg):
        raise ValueError("field past the message")
    return msg[at:at + ln]


def ntlm_check(msg, challenge):
    """(user, domain) when the AUTHENTICATE_MESSAGE's NTLMv2 response is right."""
    if msg[:8] != b"NTLMSSP\0" or struct.unpack("<I", msg[8:12])[0] != 3:
        return None
    nt = ntlm_field(msg, 20)
    domain = ntlm_field(msg, 28).decode("utf-16-le")
    user = ntlm_field(msg, 36).decode("utf-16-le")
    if len(nt) <= 24:
        return None          # NTLMv1: not accepted
    key = hmac.new(md4(PASSWORD.encode("utf-16-le")), (user.upper() + domain).encode("utf-16-le"),
                   "md5").digest()
    proof = hmac.new(key, challenge + nt[16:], "md5").digest()
    return (user, domain) if hmac.compare_digest(proof, nt[:16]) else None


PAGE = "<html><head><title>Microsoft Active Directory Certificate Services</title></head><body>%s</body></html>"


def openssl(*args, data=None):
    return subprocess.run(["openssl", *args], input=data, capture_output=True, check=True).stdout


def next_id():
    path = os.path.join(CADIR, "reqid")
    n = int(open(path).read()) + 1 if os.path.exists(path) else 11
    open(path, "w").write(str(n))
    return n


def issue(n, req_pem):
    """Issue request n; returns the PKCS#7 (base64 PEM) of leaf + CA."""
    d = os.path.join(CADIR, "req-%d" % n)
    csr = req_pem
    if b"BEGIN CERTIFICATE REQUEST" not in req_pem and b"BEGIN NEW CERTIFICATE REQUEST" not in req_pem:
        # CMS SignedData around the PKCS#10 (an MS-WCCE renewal)
        open(d + ".cms", "wb").write(req_pem)
        csr = openssl("cms", "-verify", "-noverify", "-inform", "PEM", "-in", d + ".cms",
                      "-outform", "DER")
        csr = openssl("req", "-inform", "DER", data=csr)
    csr = csr.replace(b"NEW CERTIFICATE REQUEST", b"CERTIFICATE REQUEST")
    open(d + ".csr", "wb").write(csr)
    openssl("x509", "-req", "-in", d + ".csr", "-CA", os.path.join(CADIR, "ca.pem"),
            "-CAkey", os.path.join(CADIR, "ca.key"), "-days", "30", "-set_serial", str(1000 + n),
            "-copy_extensions", "copy", "-out", d + ".pem")
    return openssl("crl2pkcs7", "-nocrl", "-certfile", d + ".pem", "-certfile",
                   os.path.join(CADIR, "ca.pem"))


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        sys.stderr.write("certsrv: " + (a[0] % a[1:]) + "\n")
        sys.stderr.flush()

    def send(self, code, ctype, body, extra=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(code)
        if ctype:
            self.send_header("Content-Type", ctype)
        for k, v in dict(extra or {}, **getattr(self, "auth_reply", {})).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized_ntlm(self):
        got = self.headers.get("Authorization", "")
        deny = PAGE % "<h2>401 - Unauthorized: Access is denied</h2>"
        if got.startswith("NTLM "):
            msg = base64.b64decode(got[5:])
            if msg[8:12] == struct.pack("<I", 1):
                self.challenge = os.urandom(8)
                self.send(401, "text/html", deny, {
                    "WWW-Authenticate": "NTLM " + base64.b64encode(ntlm_type2(self.challenge)).decode()})
                return False
            who = ntlm_check(msg, getattr(self, "challenge", b"")) if hasattr(self, "challenge") else None
            if who is not None and "%s\\%s" % (who[1], who[0]) == USER:
                sys.stderr.write("certsrv: NTLMv2 user %s\\%s\n" % (who[1], who[0]))
                return True
            sys.stderr.write("certsrv: NTLM authentication failed\n")
        self.send(401, "text/html", deny, {"WWW-Authenticate": "NTLM"})
        return False

    def authorized_negotiate(self):
        """SPNEGO (RFC 4559): one round, the Kerberos AP-REQ checked against the keytab."""
        import gssapi   # python3-gssapi: only the krb- modes need it
        got = self.headers.get("Authorization", "")
        if got.startswith("Negotiate "):
            try:
                ctx = gssapi.SecurityContext(usage="accept", creds=gssapi.Credentials(usage="accept"))
                out = ctx.step(base64.b64decode(got[10:]))
                who = str(ctx.initiator_name) if ctx.complete else None
            except (gssapi.exceptions.GSSError, ValueError) as e:
                sys.stderr.write("certsrv: Negotiate token refused: %s\n" % str(e).replace("\n", " "))
                who = None
            if who is not None and who == KRBUSER:
                sys.stderr.write("certsrv: Negotiate (Kerberos) user %s\n" % who)
                if out:
                    self.auth_reply = {"WWW-Authenticate": "Negotiate " + base64.b64encode(out).decode()}
                return True
            if who is not None:
                sys.stderr.write("certsrv: Negotiate user %s is not %s\n" % (who, KRBUSER))
        self.send(401, "text/html", PAGE % "<h2>401 - Unauthorized: Access is denied</h2>",
                  {"WWW-Authenticate": "Negotiate"})
        return False

    def authorized(self):
        self.auth_reply = {}
        if self.krb:
            return self.authorized_negotiate()
        if self.ntlm:
            return self.authorized_ntlm()
        want = "Basic " + base64.b64encode(("%s:%s" % (USER, PASSWORD)).encode()).decode()
        if self.headers.get("Authorization") == want:
            return True
        self.send(401, "text/html", PAGE % "<h2>401 - Unauthorized: Access is denied</h2>",
                  {"WWW-Authenticate": 'Basic realm="certsrv"'})
        return False

    def route(self, form):
        u = urllib.parse.urlsplit(self.path)
        parts = u.path.strip("/").split("/")
        q = dict(urllib.parse.parse_qsl(u.query))
        mode, page = parts[0], parts[-1]
        self.ntlm = mode.startswith("ntlm-")
        self.krb = mode.startswith("krb-")
        if self.ntlm or self.krb:
            mode = mode.split("-", 1)[1]
        if mode == "hang":
            time.sleep(60)
            return
        if not self.authorized():
            return
        if page == "certfnsh.asp" and self.command == "POST":
            return self.certfnsh(mode, form)
        if page in ("certnew.cer", "certnew.p7b") and self.command == "GET":
            return self.certnew(mode, page, q)
        self.send(404, "text/html", PAGE % "<h2>404 - File or directory not found.</h2>")

    def certfnsh(self, mode, form):
        sys.stderr.write("certsrv: form %s\n" % sorted((k, v) for k, v in form.items() if k != "CertRequest"))
        if mode == "redirect":
            return self.send(302, "text/html", "", {"Location": "https://example.invalid/certsrv/"})
        if mode == "error":
            return self.send(500, "text/html", PAGE % "<h2>500 - Internal server error.</h2>")
        if form.get("Mode") != "newreq" or "CertRequest" not in form:
            return self.send(200, "text/html", PAGE % "<P>Certificate Services cannot process the request: no request.</P>")
        if mode == "denied" or form.get("CertAttrib") != "CertificateTemplate:WebServer":
            return self.send(200, "text/html", PAGE % (
                "<P>Your certificate request was denied.</P><P>Contact your administrator for further "
                "information.</P><P>The disposition message is \"Denied by Policy Module 0x80094801, "
                "the request does not contain a certificate template extension or the "
                "CertificateTemplate request attribute.\".</P>"))
        n = next_id()
        open(os.path.join(CADIR, "req-%d.in" % n), "wb").write(form["CertRequest"].encode())
        if mode == "pending":
            return self.send(200, "text/html", PAGE % (
                "<h3>Certificate Pending</h3><P>Your certificate request has been received. However, "
                "you must wait for an administrator to issue the certificate you requested.</P>"
                "<P>Your Request Id is %d.</P>" % n))
        return self.send(200, "text/html", PAGE % (
            "<h3>Certificate Issued</h3><P>The certificate you requested was issued to you.</P>"
            "<a href=\"certnew.cer?ReqID=%d&amp;Enc=b64\">Download certificate</a> "
            "<a href=\"certnew.p7b?ReqID=%d&amp;Enc=b64\">Download certificate chain</a>" % (n, n)))

    def certnew(self, mode, page, q):
        rid = q.get("ReqID", "")
        if rid == "CACert" and page == "certnew.cer":
            return self.send(200, "application/pkix-cert", open(os.path.join(CADIR, "ca.pem"), "rb").read())
        src = os.path.join(CADIR, "req-%s.in" % rid)
        if not rid.isdigit() or not os.path.exists(src):
            return self.send(200, "text/html", PAGE % "<P>Certificate Services Error: the request id is not valid.</P>")
        if mode == "pending" and not os.path.exists(os.path.join(CADIR, "approve-" + rid)):
            return self.send(200, "text/html", PAGE % (
                "<h3>Certificate Pending</h3><P>Your certificate request is still pending.</P>"))
        n = int(rid)
        p7 = issue(n, open(src, "rb").read())
        if mode == "otherkey":
            p7 = openssl("crl2pkcs7", "-nocrl", "-certfile", os.path.join(CADIR, "other.pem"))
        if mode == "truncated":
            p7 = p7[:300]
        ctype = "text/plain" if mode == "wrong-ctype" else "application/x-pkcs7-certificates"
        if page == "certnew.cer":
            p7 = open(os.path.join(CADIR, "req-%d.pem" % n), "rb").read()
            ctype = "application/pkix-cert"
        self.send(200, ctype, p7)

    def do_GET(self):
        self.route({})

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n).decode()
        if self.headers.get("Content-Type", "").split(";")[0] != "application/x-www-form-urlencoded":
            return self.send(415, "text/html", PAGE % "<h2>415 - Unsupported Media Type</h2>")
        self.route(dict(urllib.parse.parse_qsl(body, keep_blank_values=True)))


class S(http.server.ThreadingHTTPServer):
    daemon_threads = True


srv = S(("127.0.0.1", int(PORT)), H)
if CERT != "-":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CERT, KEY)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
sys.stderr.write("certsrv: listening on 127.0.0.1:%s\n" % PORT)
sys.stderr.flush()
srv.serve_forever()
