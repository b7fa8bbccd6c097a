#!/usr/bin/python3
"""A PIV card (SP 800-73-4 plus the YubiKey extensions ykcs11 uses) for tests.

It answers vsmartcard-vpcd (frames: 2-byte big-endian length + payload; a
1-byte payload is a control message: 0 power off, 1 power on, 2 reset,
4 get ATR).  vpcd listens on PORT; this program connects to
127.0.0.1:PORT, and again after a pull and re-insert.

    piv-card.py --dir DIR (--port N | --port-file FILE) [--pid-file FILE]

State (keys, objects, PIN/PUK/management key and counters) lives in
DIR/card.json and survives restarts; a fresh DIR gets a new card with the
factory defaults and an attestation key, whose CA certificate is written
to DIR/attestation-root.pem.  SIGUSR1 pulls the card out of the reader,
SIGUSR2 puts it back, SIGTERM stops; DIR/pull-on (an INS byte in hex) pulls
it when a command with that INS arrives (answered 6F00: pulled mid-command).  See tests/piv/README.md.
"""
import argparse
import datetime
import json
import os
import secrets
import select
import signal
import socket
import struct
import sys
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa, utils
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.x509.oid import NameOID

try:
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES
except ImportError:  # python3-cryptography 38 (Debian 12)
    from cryptography.hazmat.primitives.ciphers.algorithms import TripleDES

ATR = bytes.fromhex("3bfd1300008131fe158073c021c057597562694b657940")
PIV_AID = bytes.fromhex("a000000308")
OTHER_AIDS = (bytes.fromhex("a0000005272101"), bytes.fromhex("a000000527471117"))
VERSION = bytes([5, 2, 7])
DEFAULT_MGM = "010203040506070801020304050607080102030405060708"
ALGS = {0x06: ("rsa", 1024), 0x07: ("rsa", 2048), 0x11: ("ec", 256), 0x14: ("ec", 384)}
KEY_SLOTS = [0x9a, 0x9c, 0x9d, 0x9e] + list(range(0x82, 0x96))
# slot -> certificate object; PIN policy: once, always, once, never
CERT_OBJ = {0x9a: 0x5fc105, 0x9c: 0x5fc10a, 0x9d: 0x5fc10b, 0x9e: 0x5fc101}
CERT_OBJ.update({s: 0x5fc10d + s - 0x82 for s in range(0x82, 0x96)})
DEFAULT_POLICY = {0x9a: 2, 0x9c: 3, 0x9d: 2, 0x9e: 1}
OID_YK = "1.3.6.1.4.1.41482.3."
TRACE = os.environ.get("PIV_CARD_TRACE") == "1"  # APDUs on stderr

SW_OK = b"\x90\x00"
SW_SECURITY = b"\x69\x82"
SW_BLOCKED = b"\x69\x83"
SW_COND = b"\x69\x85"
SW_BAD_DATA = b"\x6a\x80"
SW_NOT_FOUND = b"\x6a\x82"
SW_BAD_P1P2 = b"\x6a\x86"
SW_REF_NOT_FOUND = b"\x6a\x88"
SW_WRONG_LEN = b"\x67\x00"
SW_INS = b"\x6d\x00"
SW_CLA = b"\x6e\x00"


def tlv(tag, value):
    """BER-TLV with a 1 or 2-byte tag and a definite length."""
    n = len(value)
    if n < 0x80:
        length = bytes([n])
    elif n < 0x100:
        length = bytes([0x81, n])
    else:
        length = bytes([0x82]) + struct.pack(">H", n)
    tag = tag.to_bytes(2, "big") if tag > 0xff else bytes([tag])
    return tag + length + value


def parse_tlv(data):
    """Returns {tag: value} for a flat BER-TLV list (1 or 2-byte tags)."""
    out, i = {}, 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag & 0x1f == 0x1f:
            tag = (tag << 8) | data[i]
            i += 1
        n = data[i]
        i += 1
        if n == 0x81:
            n, i = data[i], i + 1
        elif n == 0x82:
            n, i = struct.unpack(">H", data[i:i + 2])[0], i + 2
        elif n > 0x82:
            raise ValueError("length")
        if i + n > len(data):
            raise ValueError("truncated")
        out[tag] = data[i:i + n]
        i += n
    return out


def des3(key, block, encrypt):
    c = Cipher(TripleDES(key), modes.ECB())
    op = c.encryptor() if encrypt else c.decryptor()
    return op.update(block) + op.finalize()


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def make_cert(subject, issuer, pubkey, signkey, days, extensions=(), ca=False):
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
         .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
         .public_key(pubkey)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now() - datetime.timedelta(minutes=5))
         .not_valid_after(now() + datetime.timedelta(days=days)))
    if ca:
        b = b.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    for oid, value in extensions:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oid), value),
                            critical=False)
    return b.sign(signkey, hashes.SHA256())


def pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def load_key(pem):
    return serialization.load_pem_private_key(pem.encode(), None)


class Card:
    """The card's persistent state and its APDU interpreter."""

    def __init__(self, directory):
        self.dir = directory
        self.path = os.path.join(directory, "card.json")
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.s = json.load(f)
        else:
            self.s = self.factory()
            self.make_attestation()
            self.save()
        self.power_reset()

    @staticmethod
    def factory():
        return {"serial": 10000000 + secrets.randbelow(80000000), "pin": "123456",
                "puk": "12345678", "pin_max": 3, "puk_max": 3, "pin_left": 3,
                "puk_left": 3, "mgm": DEFAULT_MGM, "keys": {}, "objects": {},
                "guid": secrets.token_hex(16)}

    def make_attestation(self):
        root = ec.generate_private_key(ec.SECP256R1())
        rootcert = make_cert("p11km test PIV attestation root", "p11km test PIV attestation root",
                             root.public_key(), root, 7300, ca=True)
        f9 = ec.generate_private_key(ec.SECP256R1())
        f9cert = make_cert("Yubico PIV Attestation", rootcert.subject.rfc4514_string()[3:],
                           f9.public_key(), root, 7300, ca=True)
        self.s["attest_key"] = pem_key(f9)
        self.s["objects"]["%06x" % 0x5fff01] = self.cert_object(
            f9cert.public_bytes(serialization.Encoding.DER)).hex()
        with open(os.path.join(self.dir, "attestation-root.pem"), "wb") as f:
            f.write(rootcert.public_bytes(serialization.Encoding.PEM))
        self.s["chuid"] = True
        fascn = bytes.fromhex("d4e739da739ced39ce739d836858210842108421c84210c3eb")
        self.s["objects"]["%06x" % 0x5fc102] = (
            tlv(0x30, fascn) + tlv(0x34, bytes.fromhex(self.s["guid"])) +
            tlv(0x35, b"20501231") + tlv(0x3e, b"") + tlv(0xfe, b"")).hex()

    @staticmethod
    def cert_object(der):
        return tlv(0x70, der) + tlv(0x71, b"\x00") + tlv(0xfe, b"")

    def save(self):
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.s, f)
        os.replace(tmp, self.path)

    def power_reset(self):
        self.selected = False
        self.pin_ok = False
        self.pin_fresh = False  # a VERIFY since the last PIN-always signature
        self.mgm_ok = False
        self.witness = None
        self.challenge = None
        self.pending = b""
        self.chain = b""

    # --- the APDU layer ------------------------------------------------------
    def apdu(self, raw):
        """One command APDU -> response APDU (bytes)."""
        if len(raw) < 4:
            return SW_WRONG_LEN
        cla, ins, p1, p2 = raw[:4]
        body, data, ne, ext = raw[4:], b"", 0, False
        if len(body) == 1:
            ne = body[0] or 256
        elif len(body) >= 3 and body[0] == 0 and len(body) in (3,):
            ne, ext = struct.unpack(">H", body[1:3])[0] or 65536, True
        elif len(body) > 1 and body[0] == 0:
            n = struct.unpack(">H", body[1:3])[0]
            data, rest, ext = body[3:3 + n], body[3 + n:], True
            if len(data) != n or len(rest) not in (0, 2):
                return SW_WRONG_LEN
            ne = (struct.unpack(">H", rest)[0] or 65536) if rest else 0
        elif body:
            n = body[0]
            data, rest = body[1:1 + n], body[1 + n:]
            if len(data) != n or len(rest) > 1:
                return SW_WRONG_LEN
            ne = (rest[0] or 256) if rest else 0
        if ins == 0xc0:
            return self.respond(self.pending, ne, ext)
        self.pending = b""
        if cla & 0xef != 0:
            return SW_CLA
        if cla & 0x10:
            self.chain += data
            return SW_OK
        data, self.chain = self.chain + data, b""
        if ins == 0xa4:
            return self.select(p1, data)
        if not self.selected:
            return SW_INS
        handler = {
            0x20: self.verify, 0x24: self.change_reference, 0x2c: self.reset_retry,
            0x47: self.generate, 0x87: self.general_authenticate, 0xcb: self.get_data,
            0xdb: self.put_data, 0xfd: lambda p1, p2, d: VERSION + SW_OK,
            0xf8: lambda p1, p2, d: struct.pack(">I", self.s["serial"]) + SW_OK,
            0xff: self.set_mgm_key, 0xfa: self.set_pin_retries, 0xf9: self.attest,
            0xfb: self.reset_card,
        }.get(ins)
        if handler is None:
            return SW_INS
        try:
            out = handler(p1, p2, data)
        except (ValueError, KeyError, IndexError, TypeError):
            return SW_BAD_DATA
        if len(out) > 2:
            return self.respond(out[:-2], ne, ext)
        return out

    def respond(self, payload, ne, ext):
        """Answer with up to ne bytes; announce the rest with 61 xx."""
        limit = ne if (ext and ne) else min(ne or 256, 256)
        head, self.pending = payload[:limit], payload[limit:]
        if self.pending:
            return head + bytes([0x61, min(len(self.pending), 255) & 0xff])
        return head + SW_OK

    # --- commands -------------------------------------------------------------
    def select(self, p1, aid):
        if p1 != 0x04:
            return SW_BAD_P1P2
        if aid and PIV_AID.startswith(aid[:5]) and len(aid) >= 5:
            self.power_reset()
            self.selected = True
            apt = (tlv(0x4f, bytes.fromhex("000010000100")) +
                   tlv(0x79, tlv(0x4f, PIV_AID)) +
                   tlv(0x50, b"p11km test PIV") +
                   tlv(0xac, b"".join(tlv(0x80, bytes([a])) for a in (3, 6, 7, 0x11, 0x14)) +
                       tlv(0x06, b"\x00")))
            return tlv(0x61, apt) + SW_OK
        if any(aid == a[:len(aid)] and len(aid) >= 5 for a in OTHER_AIDS):
            self.power_reset()  # another applet: PIV loses its security status
            return SW_OK
        return SW_NOT_FOUND

    def pin_status(self):
        if self.s["pin_left"] == 0:
            return SW_BLOCKED
        return bytes([0x63, 0xc0 | min(self.s["pin_left"], 15)])

    @staticmethod
    def unpad(b):
        return b.rstrip(b"\xff").decode("latin-1")

    def verify(self, p1, p2, data):
        if p2 != 0x80:
            return SW_REF_NOT_FOUND
        if p1 == 0xff:
            self.pin_ok = self.pin_fresh = False
            return SW_OK
        if not data:
            if self.pin_ok:
                return SW_OK
            return self.pin_status()
        if len(data) != 8:
            return SW_BAD_DATA
        if self.s["pin_left"] == 0:
            return SW_BLOCKED
        if self.unpad(data) == self.s["pin"]:
            self.s["pin_left"] = self.s["pin_max"]
            self.pin_ok = self.pin_fresh = True
            self.save()
            return SW_OK
        self.s["pin_left"] -= 1
        self.pin_ok = self.pin_fresh = False
        self.save()
        return self.pin_status()

    def check_ref(self, which, value):
        """PIN or PUK check with its retry counter; None when it matches."""
        left = which + "_left"
        if self.s[left] == 0:
            return SW_BLOCKED
        if value == self.s[which]:
            self.s[left] = self.s[which + "_max"]
            return None
        self.s[left] -= 1
        self.save()
        return SW_BLOCKED if self.s[left] == 0 else bytes([0x63, 0xc0 | min(self.s[left], 15)])

    def change_reference(self, p1, p2, data):
        which = {0x80: "pin", 0x81: "puk"}.get(p2)
        if which is None:
            return SW_REF_NOT_FOUND
        if len(data) != 16:
            return SW_BAD_DATA
        old, new = self.unpad(data[:8]), self.unpad(data[8:])
        err = self.check_ref(which, old)
        if err:
            return err
        if len(new) < 6:
            return SW_BAD_DATA
        self.s[which] = new
        self.save()
        return SW_OK

    def reset_retry(self, p1, p2, data):
        if p2 != 0x80 or len(data) != 16:
            return SW_BAD_DATA
        err = self.check_ref("puk", self.unpad(data[:8]))
        if err:
            return err
        new = self.unpad(data[8:])
        if len(new) < 6:
            return SW_BAD_DATA
        self.s["pin"], self.s["pin_left"] = new, self.s["pin_max"]
        self.save()
        return SW_OK

    def set_pin_retries(self, p1, p2, data):
        if not (self.mgm_ok and self.pin_ok):
            return SW_SECURITY
        if not p1 or not p2:
            return SW_BAD_P1P2
        self.s.update(pin="123456", puk="12345678", pin_max=p1, puk_max=p2,
                      pin_left=p1, puk_left=p2)
        self.save()
        return SW_OK

    def reset_card(self, p1, p2, data):
        if self.s["pin_left"] or self.s["puk_left"]:
            return SW_COND
        fresh = self.factory()
        fresh["serial"] = self.s["serial"]
        for k in ("attest_key", "guid"):
            fresh[k] = self.s[k]
        for k in ("%06x" % 0x5fff01, "%06x" % 0x5fc102):
            fresh["objects"][k] = self.s["objects"][k]
        self.s = fresh
        self.save()
        self.power_reset()
        self.selected = True
        return SW_OK

    def set_mgm_key(self, p1, p2, data):
        if not self.mgm_ok:
            return SW_SECURITY
        if p1 != 0xff or p2 not in (0xff, 0xfe) or len(data) != 27 or data[:3] != b"\x03\x9b\x18":
            return SW_BAD_DATA
        self.s["mgm"] = data[3:].hex()
        self.save()
        return SW_OK

    def mgm_auth(self, data):
        key = bytes.fromhex(self.s["mgm"])
        t = parse_tlv(parse_tlv(data)[0x7c])
        if 0x80 in t and not t[0x80]:  # mutual, step 1: witness request
            self.witness = secrets.token_bytes(8)
            return tlv(0x7c, tlv(0x80, des3(key, self.witness, True))) + SW_OK
        if 0x80 in t and 0x81 in t:  # mutual, step 2
            ok = self.witness is not None and t[0x80] == self.witness
            self.witness = None
            if not ok or len(t[0x81]) != 8:
                self.mgm_ok = False
                return SW_SECURITY
            self.mgm_ok = True
            return tlv(0x7c, tlv(0x82, des3(key, t[0x81], True))) + SW_OK
        if 0x81 in t and not t[0x81]:  # external authenticate: challenge request
            self.challenge = secrets.token_bytes(8)
            return tlv(0x7c, tlv(0x81, self.challenge)) + SW_OK
        if 0x82 in t and self.challenge is not None:
            ok = des3(key, self.challenge, True) == t[0x82]
            self.challenge = None
            self.mgm_ok = ok
            return SW_OK if ok else SW_SECURITY
        return SW_BAD_DATA

    def key_allowed(self, slot, info):
        policy = info.get("pin_policy") or DEFAULT_POLICY.get(slot, 2)
        if policy == 1:
            return True
        if policy == 3:
            if not self.pin_fresh:
                return False
            self.pin_fresh = False
            return True
        return self.pin_ok

    def general_authenticate(self, p1, p2, data):
        if p2 == 0x9b:
            return self.mgm_auth(data) if p1 in (0x03, 0x00) else SW_BAD_P1P2
        info = self.s["keys"].get("%02x" % p2)
        if info is None:
            return SW_NOT_FOUND
        if ALGS.get(p1) != (info["kind"], info["bits"]):
            return SW_BAD_P1P2
        t = parse_tlv(parse_tlv(data)[0x7c])
        if 0x82 not in t:
            return SW_BAD_DATA
        if not self.key_allowed(p2, info):
            return SW_SECURITY
        key = load_key(info["key"])
        if info["kind"] == "rsa":
            m = int.from_bytes(t[0x81], "big")
            nums = key.private_numbers()
            n = nums.public_numbers.n
            if len(t[0x81]) != info["bits"] // 8 or m >= n:
                return SW_BAD_DATA
            out = pow(m, nums.d, n).to_bytes(info["bits"] // 8, "big")
        elif 0x85 in t:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, t[0x85])
            out = key.exchange(ec.ECDH(), peer)
        else:
            size = info["bits"] // 8
            digest = t[0x81]
            if len(digest) > size:
                return SW_BAD_DATA
            digest = digest.rjust(size, b"\x00")
            alg = hashes.SHA256() if size == 32 else hashes.SHA384()
            out = key.sign(digest, ec.ECDSA(utils.Prehashed(alg)))
        return tlv(0x7c, tlv(0x82, out)) + SW_OK

    def generate(self, p1, p2, data):
        if not self.mgm_ok:
            return SW_SECURITY
        if p2 not in KEY_SLOTS:
            return SW_BAD_P1P2
        t = parse_tlv(parse_tlv(data)[0xac])
        alg = t[0x80][0]
        if alg not in ALGS:
            return SW_BAD_DATA
        kind, bits = ALGS[alg]
        if kind == "rsa":
            key = rsa.generate_private_key(65537, bits)
            pub = key.public_key().public_numbers()
            body = (tlv(0x81, pub.n.to_bytes(bits // 8, "big")) +
                    tlv(0x82, pub.e.to_bytes(3, "big")))
        else:
            key = ec.generate_private_key(ec.SECP256R1() if bits == 256 else ec.SECP384R1())
            body = tlv(0x86, key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
        pin_policy = t.get(0xaa, b"\x00")[0]
        touch = t.get(0xab, b"\x00")[0]
        self.s["keys"]["%02x" % p2] = {"kind": kind, "bits": bits, "key": pem_key(key),
                                       "pin_policy": pin_policy, "touch_policy": touch,
                                       "generated": True}
        self.save()
        return tlv(0x7f49, body) + SW_OK

    def attest(self, p1, p2, data):
        info = self.s["keys"].get("%02x" % p1)
        if info is None or not info.get("generated"):
            return SW_BAD_DATA
        signer = load_key(self.s["attest_key"])
        pub = load_key(info["key"]).public_key()
        policy = bytes([info.get("pin_policy") or DEFAULT_POLICY.get(p1, 2),
                        info.get("touch_policy") or 1])
        serial = self.s["serial"].to_bytes(4, "big").lstrip(b"\x00")
        if serial[0] & 0x80:
            serial = b"\x00" + serial
        ext = [(OID_YK + "3", VERSION), (OID_YK + "7", tlv(0x02, serial)),
               (OID_YK + "8", policy), (OID_YK + "9", b"\x01")]
        cert = make_cert("YubiKey PIV Attestation %02x" % p1, "Yubico PIV Attestation",
                         pub, signer, 3650, ext)
        return cert.public_bytes(serialization.Encoding.DER) + SW_OK

    @staticmethod
    def object_tag(data):
        t = parse_tlv(data)
        tag = t.get(0x5c)
        if tag is None or len(tag) not in (1, 3):
            raise ValueError("tag")
        return tag.hex()

    def get_data(self, p1, p2, data):
        if (p1, p2) != (0x3f, 0xff):
            return SW_BAD_P1P2
        tag = self.object_tag(data)
        if tag == "7e":
            disc = tlv(0x4f, bytes.fromhex("a000000308000010000100"))
            return tlv(0x7e, disc + tlv(0x5f2f, b"\x40\x00")) + SW_OK
        if tag in ("5fc109", "5fc10c") and tag not in self.s["objects"]:
            return SW_NOT_FOUND
        value = self.s["objects"].get(tag)
        if value is None:
            return SW_NOT_FOUND
        return tlv(0x53, bytes.fromhex(value)) + SW_OK

    def put_data(self, p1, p2, data):
        if (p1, p2) != (0x3f, 0xff):
            return SW_BAD_P1P2
        if not self.mgm_ok:
            return SW_SECURITY
        t = parse_tlv(data)
        tag = self.object_tag(data)
        if tag == "7e" or 0x53 not in t:
            return SW_BAD_DATA
        if t[0x53]:
            self.s["objects"][tag] = t[0x53].hex()
        else:
            self.s["objects"].pop(tag, None)
        self.save()
        return SW_OK


class Reader:
    """The connection to vpcd: frames in, frames out; pull and insert.

    vpcd (Debian's 3.3) is the server: it listens on PORT and the card
    connects to it; a closed connection is a card taken out.  (Its client
    mode cannot reconnect: pcscd aborts when the card's socket closes.)"""

    def __init__(self, card, port):
        self.card = card
        self.port = port
        self.conn = None
        self.present = True
        self.buf = b""
        self.connected_once = False
        self.not_before = 0

    def drop(self):
        if self.conn:
            self.conn.close()
        self.conn, self.buf = None, b""

    def connect(self):
        conn = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn.connect(("127.0.0.1", self.port))
        except OSError:
            conn.close()
            return False
        self.conn = conn
        self.card.power_reset()
        return True

    def pull_on(self, payload):
        """DIR/pull-on names an INS: pull the card instead of answering it."""
        path = os.path.join(self.card.dir, "pull-on")
        try:
            with open(path) as f:
                ins = int(f.read().strip(), 16)
        except (OSError, ValueError):
            return False
        if len(payload) < 2 or payload[1] != ins:
            return False
        os.unlink(path)
        # answered first (6F00, no diagnosis), then out: vpcd cannot
        # recover from a connection that closes under a pending command
        self.send(b"\x6f\x00")
        self.present = False
        self.drop()
        self.not_before = time.monotonic() + 1.5
        write_file(os.path.join(self.card.dir, "reader-state"), "pulled\n")
        return True

    def frame(self, payload):
        if len(payload) > 1 and self.pull_on(payload):
            return
        if len(payload) == 1:
            if payload[0] == 4:
                self.send(ATR)
            elif payload[0] in (0, 1, 2):
                self.card.power_reset()
            return
        out = self.card.apdu(payload)
        if TRACE:
            print("> %s\n< %s" % (payload.hex(), out.hex()), file=sys.stderr, flush=True)
        self.send(out)

    def quickack(self):
        if hasattr(socket, "TCP_QUICKACK"):
            self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def send(self, data):
        self.conn.sendall(struct.pack(">H", len(data)) + data)
        self.quickack()

    def readable(self):
        data = self.conn.recv(65536)
        if not data:
            self.drop()
            return
        self.quickack()
        self.buf += data
        while self.conn is not None and len(self.buf) >= 2:
            n = struct.unpack(">H", self.buf[:2])[0]
            if len(self.buf) < 2 + n:
                break
            payload, self.buf = self.buf[2:2 + n], self.buf[2 + n:]
            self.frame(payload)


def write_file(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", required=True, help="the card's state directory")
    ap.add_argument("--port", type=int, help="vpcd's port on 127.0.0.1")
    ap.add_argument("--port-file", help="wait for this file, then read the port from it")
    ap.add_argument("--pid-file")
    args = ap.parse_args()
    card = Card(args.dir)
    port = args.port
    while port is None:
        try:
            with open(args.port_file) as f:
                port = int(f.read())
        except (OSError, ValueError):
            time.sleep(0.01)
    reader = Reader(card, port)
    flags = {"pull": False, "insert": False, "stop": False}

    def on_signal(signum, frame):
        flags[{signal.SIGUSR1: "pull", signal.SIGUSR2: "insert"}.get(signum, "stop")] = True
    for s in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    if args.pid_file:
        write_file(args.pid_file, "%d\n" % os.getpid())
    state = os.path.join(args.dir, "reader-state")
    while not flags["stop"]:
        if flags["pull"]:
            flags["pull"] = False
            reader.present = False
            reader.drop()
            write_file(state, "pulled\n")
        if flags["insert"]:
            flags["insert"] = False
            reader.present = True
        if reader.present and reader.conn is None and time.monotonic() >= reader.not_before:
            if reader.connect():
                write_file(state, "inserted\n")
            else:
                time.sleep(0.02)
                continue
        if reader.conn is None:
            time.sleep(0.02)
            continue
        try:
            ready, _, _ = select.select([reader.conn], [], [], 0.05)
            if ready:
                reader.readable()
        except InterruptedError:
            continue
        except OSError:
            reader.drop()
    reader.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
