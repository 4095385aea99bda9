"""Writes the adversarial corpus next to this file (committed; rerun only to change it).

    python tests/data/adversarial/make_corpus.py

Every file is a kind of bad input real log pipelines meet; tests/test_adversarial.py says what
dlcdn must do with each.
"""

import gzip
import random
from pathlib import Path

import zstandard

HERE = Path(__file__).resolve().parent
random.seed(42)


def ok(i: int, tz: str = "+0000", day: int = 20) -> bytes:
    return (
        f"198.51.100.{i % 250} - - [{day}/Nov/2026:10:{i % 60:02d}:{(i * 7) % 60:02d} {tz}] "
        '"GET /alpine/v3.22/main/x86_64/APKINDEX.tar.gz HTTP/1.1" 304 0 "-" "libfetch/2.0"'
    ).encode()


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)


def main() -> None:
    rnd = bytes(random.randrange(256) for _ in range(4000))
    # TLS ClientHello and other binary bytes sent to port 80, logged raw (not escaped)
    lines = []
    for i in range(20):
        lines.append(ok(i))
        if i % 4 == 0:
            lines.append(
                b'203.0.113.5 - - [20/Nov/2026:10:00:00 +0000] "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\xa1\xb2" 400 157 "-" "-"'
            )
            lines.append(rnd[i * 100 : i * 100 + 120].replace(b"\n", b""))
    write("tls_binary.log", b"\n".join(lines) + b"\n")
    # NUL bytes inside lines and alone
    write(
        "nul_bytes.log",
        b"\n".join(
            [
                *(ok(i) for i in range(10)),
                b"\x00" * 64,
                ok(11).replace(b"GET", b"G\x00T"),
                ok(12) + b"\x00",
            ]
        )
        + b"\n",
    )
    # invalid UTF-8: a latin-1 user agent, an overlong encoding, lone continuation bytes
    write(
        "invalid_utf8.log",
        b"\n".join(
            [
                *(ok(i) for i in range(10)),
                ok(20).replace(b"libfetch/2.0", b"Mozilla/5.0 (Mac\xe9)"),
                ok(21).replace(b"/alpine/", b"/alp\xc0\xafine/"),
                b"\x80\x81\x82 continuation bytes",
            ]
        )
        + b"\n",
    )
    # CRLF line ends, a bare CR inside a line
    write(
        "crlf.log",
        b"\r\n".join([*(ok(i) for i in range(10)), ok(10).replace(b"libfetch", b"lib\rfetch")])
        + b"\r\n",
    )
    # a line with 10,000 quotes (regex engines that backtrack die here)
    write(
        "many_quotes.log",
        b"\n".join(
            [
                ok(1),
                b'198.51.100.1 - - [20/Nov/2026:10:00:00 +0000] "'
                + b'"' * 10_000
                + b'" 200 1 "-" "-"',
                b'"' * 10_000,
                ok(2),
            ]
        )
        + b"\n",
    )
    # mixed formats in one file: combined, Fastly JSON, an nginx error-log line
    mixed = []
    for i in range(12):
        mixed.append(ok(i))
        if i % 3 == 0:
            mixed.append(
                b'<134>2026-11-20T10:00:00Z cache-fra-1 dlcdn[1]: {"timestamp":"2026-11-20T10:00:00Z","client_ip":"192.0.2.1","response_status":200}'
            )
    mixed.append(
        b'2026/11/20 10:00:00 [error] 1234#0: *5 open() "/srv/alpine/favicon.ico" failed (2: No such file or directory)'
    )
    write("mixed_formats.log", b"\n".join(mixed) + b"\n")
    # timestamps out of order and in other offsets, crossing UTC day boundaries both ways
    tzs = ["+0000", "-0800", "+1400", "+0000", "-1200", "+0530", "+0000"] * 3
    write(
        "out_of_order_offsets.log",
        b"\n".join(ok(i * 13, tz=tz, day=20 + (i % 3)) for i, tz in enumerate(tzs)) + b"\n",
    )
    # compressed streams cut short
    data = b"".join(ok(i) + b"\n" for i in range(5000))
    gz = gzip.compress(data)
    write("truncated.log.gz", gz[: len(gz) * 2 // 3])
    zs = zstandard.ZstdCompressor().compress(data)
    write("truncated.log.zst", zs[: len(zs) * 2 // 3])
    # empty, and blank lines only
    write("empty.log", b"")
    write("blank_lines.log", b"\n\n   \n\t\n")
    # not a log at all
    write("not_a_log.png", b"\x89PNG\r\n\x1a\n" + rnd[:2000])
    # a zstd bomb: log lines around 4 GiB of zeros (no newline: one endless line), in ~130 KB
    head = b"".join(ok(i) + b"\n" for i in range(3))
    with (
        open(HERE / "bomb.zst", "wb") as f,
        zstandard.ZstdCompressor(level=19).stream_writer(f) as w,
    ):
        w.write(head)
        block = b"\x00" * (1 << 22)
        for _ in range(1024):
            w.write(block)
        w.write(b"\n" + head)


if __name__ == "__main__":
    main()
