#!/usr/bin/env python3
"""Writes the small documents of tests/integration/test_documents.c: a real
one-page PDF, a 2x2 PNG and an 8x8 grey baseline JPEG, each made byte by
byte (no imaging library needed), and a text file. Run from this
directory; the outputs are committed."""
import struct
import zlib


def pdf() -> bytes:
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,  # the content stream
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    text = b"BT /F1 12 Tf 20 50 Td (VoxLink LOA test) Tj ET"
    objs[3] = b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream"
    out = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return out


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + bytes([255, 0, 0, 0, 0, 255]) for _ in range(2))  # 2x2 RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def jpeg() -> bytes:
    # Baseline, one 8x8 grey component, every coefficient 0: DC category 0
    # and EOB each get the one-bit code "0"; the scan is "00" padded with 1s.
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\x00" + bytes([1] * 64)
    sof = struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"
    dht_dc = b"\x00" + bytes([1] + [0] * 15) + b"\x00"
    dht_ac = b"\x10" + bytes([1] + [0] * 15) + b"\x00"
    sos = b"\x01\x01\x00\x00\x3f\x00"

    def seg(marker: int, data: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(data) + 2) + data
    return (b"\xff\xd8" + seg(0xE0, app0) + seg(0xDB, dqt) + seg(0xC0, sof) + seg(0xC4, dht_dc)
            + seg(0xC4, dht_ac) + seg(0xDA, sos) + b"\x3f" + b"\xff\xd9")


for name, data in (("loa.pdf", pdf()), ("stamp.png", png()), ("scan.jpg", jpeg()),
                   ("notes.txt", b"This is plain text, not a PDF.\n")):
    with open(name, "wb") as f:
        f.write(data)
