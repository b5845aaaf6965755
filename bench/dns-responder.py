#!/usr/bin/env python3
"""A tiny authoritative DNS responder for benchmarks on loopback (UDP only).

Usage: dns-responder.py PORT NAME TYPE VALUE [NAME TYPE VALUE ...]
  TYPE is TXT, MX ("10 host") or A. Unknown names get NXDOMAIN; known names without records
  of the asked type an empty answer. Example, the records of the SMTP checks benchmark:

  dns-responder.py 5353 sender.test TXT "v=spf1 ip4:127.0.0.1 -all" \
                        _dmarc.sender.test TXT "v=DMARC1; p=reject"
"""
import socket
import struct
import sys


def read_name(m, pos):
    labels = []
    while True:
        n = m[pos]
        pos += 1
        if n == 0:
            return ".".join(labels).lower(), pos
        labels.append(m[pos:pos + n].decode("ascii", "replace"))
        pos += n


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def rdata(rtype, value):
    if rtype == "TXT":
        raw = value.encode()
        return 16, b"".join(bytes([len(raw[i:i + 255])]) + raw[i:i + 255] for i in range(0, len(raw), 255))
    if rtype == "MX":
        pref, host = value.split()
        return 15, struct.pack("!H", int(pref)) + encode_name(host)
    if rtype == "A":
        return 1, socket.inet_aton(value)
    raise SystemExit("unknown type " + rtype)


def main():
    port = int(sys.argv[1])
    table = {}
    args = sys.argv[2:]
    for i in range(0, len(args), 3):
        name, rtype, value = args[i:i + 3]
        table.setdefault(name.lower().rstrip("."), []).append(rdata(rtype.upper(), value))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        q, peer = s.recvfrom(1500)
        try:
            name, end = read_name(q, 12)
            qtype = struct.unpack("!H", q[end:end + 2])[0]
        except (IndexError, struct.error):
            continue
        recs = table.get(name)
        answers = [r for r in (recs or []) if r[0] == qtype]
        head = q[0:2] + bytes([0x84 | (q[2] & 1), 0x80 | (0 if recs is not None else 3)])
        head += struct.pack("!HHHH", 1, len(answers), 0, 0)
        body = q[12:end + 4]
        for t, data in answers:
            body += b"\xc0\x0c" + struct.pack("!HHIH", t, 1, 300, len(data)) + data
        s.sendto(head + body, peer)


if __name__ == "__main__":
    main()
