#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/<target>/seed-* (committed).

Each seed is an input in the layout its property documents (prop_*.c):
hand-made cases that reach the interesting paths at once, plus a few
pseudo-random inputs (fixed seed) for each combination of flags.  libFuzzer
starts from these; `make unittest` replays them.  Rerun after changing an
input layout:  python3 fuzz/make_seeds.py
Files not named seed-* (e.g. regression-*, inputs that once failed) are
kept by hand and never rewritten here.
"""
import os
import random
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(bytes(data))


def split_byte(plen, total):
    """The byte that makes prop_glob split `total` bytes after `plen`
    (always exists when total <= 256)."""
    if total == 0:
        return 0
    for b in range(256):
        if total * b // 256 == plen:
            return b
    raise ValueError((plen, total))


# ---- glob: flags, split, stretch, pattern source, subject source --------
def glob_seed(mode, pattern, subject, alphabet=False, stretch=None):
    flags = mode | (4 if alphabet else 0) | (8 if stretch is not None else 0)
    body = bytes(pattern) + bytes(subject)
    return [flags, split_byte(len(pattern), len(body)), stretch or 0] + list(body)


B = lambda s: s.encode("latin-1")
glob_cases = {
    "bytes-doc-star": (0, B("doc:*"), B("doc:42")),
    "bytes-mid-star": (0, B("a*b*c"), B("aXbYcZc")),
    "bytes-question": (0, B("re?d"), B("read")),
    "bytes-no-match": (0, B("*x*y"), B("yyyyxxxx")),
    "bytes-empty": (0, B(""), B("")),
    "bytes-lead-byte": (0, B("*\x80"), B("\xc3\x80")),
    "raw-lead-byte": (2, B("*\x80"), B("\xc3\x80")),
    "raw-truncated": (2, B("?*"), B("\xe2\x82")),
    # UTF-8 mode: each source byte becomes one code point (prop_glob.c)
    "utf8-ascii": (1, B("user:*"), B("user:alice")),
    "utf8-multibyte": (1, bytes([0x3f, 0x2a, 0x90]), bytes([0xe5, 0x90, 0xfa])),
    "eucjp-overlap": (3, bytes([0x2a, 0x85, 0x2a]), bytes([0x81, 0x85, 0x85, 0x90])),
}
for name, (mode, p, s) in glob_cases.items():
    write("glob", name, glob_seed(mode, p, s))
# small alphabets: indexes into prop_glob.c's alphabets
for mode in range(4):
    write("glob", f"alphabet-{mode}",
          glob_seed(mode, [2, 0, 2, 7, 3, 2, 1], [0, 7, 1, 0, 8, 1, 9, 1], alphabet=True))
# thousands of stars: 1 + 8 * 255 = 2041 before each pattern symbol
write("glob", "stretch-many-stars", glob_seed(0, B("ab"), B("a" * 250 + "c"), stretch=255))
write("glob", "stretch-utf8", glob_seed(1, [0x61, 0xe5, 0x62], [0x61] * 200 + [0xe5],
                                        stretch=200))

rng = random.Random(20240507)
for flags in range(16):
    n = rng.choice([8, 40, 200, 600])
    write("glob", f"random-{flags:02d}", [flags] + [rng.randrange(256) for _ in range(n)])


# ---- request_key: mode, x, y, four length bytes, the fields ------------
def key_seed(mode, x, y, fields, tail=b""):
    out = [mode, x, y] + [len(f) for f in fields]
    for f in fields:
        out += list(f)
    return out + list(tail)


write("request_key", "boundary-actor-action", key_seed(0, 0, 2, [b"ab", b"c", b"d", b"{}"]))
write("request_key", "boundary-action-resource", key_seed(0, 1, 3, [b"u", b"read", b"doc:1", b"{}"]))
write("request_key", "boundary-resource-context", key_seed(0, 2, 0, [b"u", b"r", b"d1", b"x"]))
write("request_key", "equal-copy", key_seed(1, 0, 0, [b"user:a", b"read", b"doc:1", b'{"ip": "10.0.0.1"}']))
write("request_key", "independent-same",
      key_seed(2, 0, 0, [b"a", b"b", b"c", b"d"]) + [1, 1, 1, 1] + list(b"abcd"))
write("request_key", "independent-shifted",
      key_seed(2, 0, 0, [b"ab", b"", b"c", b""]) + [1, 1, 1, 0] + list(b"abc"))
write("request_key", "flip-byte", key_seed(3, 5, 3, [b"user:a", b"read", b"doc:1", b"{}"]))
write("request_key", "append-byte", key_seed(3, 2, 0, [b"user:a", b"read", b"doc:1", b"{}"]))
write("request_key", "empty-fields", key_seed(1, 0, 0, [b"", b"", b"", b""]))
write("request_key", "long-field", key_seed(1, 0, 0, [b"", b"", b"", b""])[:3] + [0xF3, 1, 1, 0])
fake = b"a" + struct.pack("=I", 4) + b"read"
write("request_key", "fake-length-prefix", key_seed(2, 0, 0, [fake, b"x", b"d", b""])
      + [1, 4, 1, 0] + list(b"areadd"))
for i in range(8):
    n = rng.choice([10, 60, 300])
    write("request_key", f"random-{i}", [i % 4] + [rng.randrange(256) for _ in range(n)])


# ---- evaluator ----------------------------------------------------------
# pattern vocabulary indexes (prop_evaluator.c): 0 "*", 1 "?", 2 "u", 3 "r",
# 4 ":", 5 "a", 6 "b", 7 "é", 10 "ro", 11 "le", 15 ":*"
# uid vocabulary indexes: 0 "u", 1 "r", 2 ":", 3 "a", 4 "b", 5 "é",
# 6 "ro", 7 "le", 8 "1", 11 "x"
def policy(priority, ec, pid, patterns):
    out = [priority, ec, pid]
    for tokens in patterns:
        out += [len(tokens)] + tokens
    return out


def uid(tokens):
    return [len(tokens)] + tokens


def request(dims):
    out = []
    for entities in dims:
        out += [len(entities) - 1]
        for e in entities:
            out += uid(e)
    return out


# priority byte p -> p - 2 (p < 5); ec: bit 0 deny, bits 1-2 condition
# (0 none, 1 true, 2 false, 3 unknown); id byte b -> b - 100
ALLOW, DENY = 0, 1
COND_UNKNOWN = 3 << 1
seed = [1, 4]  # UTF-8, 4 policies
seed += policy(2, ALLOW, 110, [[10, 11, 15], [3, 0], [0]])          # allow role:* / r* / *
seed += policy(2, DENY | COND_UNKNOWN, 120, [[0], [0], [5, 0]])     # deny if unknown, a*
seed += policy(3, ALLOW, 130, [[2, 4, 5], [0], [0]])                # priority 1 allow u:a
seed += policy(2, DENY, 105, [[2, 4, 1], [1, 1], [0]])              # deny u:? ??
seed += [1]  # two requests
seed += request([[[0, 2, 3], [6, 7, 2]], [[1]], [[3, 8]]])          # u:a in role:, r, a1
seed += request([[[0, 2, 4], [6, 7, 2]], [[1, 3]], [[4, 8], [3]]])  # u:b in role:, ra, b1 in a
write("evaluator", "scenario-roles", seed)

seed = [0, 3]  # byte semantics: '?' is one byte, 'é' two
seed += policy(2, ALLOW, 100, [[1], [0], [0]])
seed += policy(2, ALLOW, 101, [[1, 1], [0], [0]])
seed += policy(2, DENY | (2 << 1), 99, [[0], [0], [0]])
seed += [0] + request([[[5]], [[0]], [[0]]])
write("evaluator", "scenario-bytes", seed)

for flags in range(32):
    n = rng.choice([20, 100, 400, 1500])
    write("evaluator", f"random-{flags:02d}", [flags] + [rng.randrange(256) for _ in range(n)])


# ---- cache_value: h1, h2, flags, policy id, expiry, mask, raw bytes ------
def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def cache_value(flags, policy_id, expires, key_hash):
    """src/core/cache_value.c's layout: magic, flags, 3 zero bytes, then
    little-endian policy id, expiry, key hash and the checksum."""
    body = b"DCV1" + bytes([flags, 0, 0, 0]) + struct.pack(
        "<qqQ", policy_id, expires, key_hash)
    return body + struct.pack("<Q", fnv1a(body))


def value_seed(h1, h2, flags, policy_id, expires, mask, raw):
    return list(struct.pack(">QQ", h1, h2)) + [flags] + list(
        struct.pack(">qq", policy_id, expires)) + [mask] + list(raw)


H1, H2 = 0x1122334455667788, 0x8877665544332211
write("cache_value", "valid-allow", value_seed(H1, H2, 3, 7, 0, 1, cache_value(3, 7, 0, H1)))
write("cache_value", "valid-deny-unknown",
      value_seed(H1, H2, 5, -9, 10**15, 0x80, cache_value(5, -9, 10**15, H1)))
write("cache_value", "valid-no-policy", value_seed(H1, H2, 0, 0, 0, 0xFF, cache_value(0, 0, 0, H1)))
write("cache_value", "other-key", value_seed(H1, H2, 3, 1, 0, 2, cache_value(3, 1, 0, H2)))
write("cache_value", "allow-without-policy",
      value_seed(H1, H2, 2, 0, 0, 4, cache_value(2, 0, 0, H1)))
bad = bytearray(cache_value(3, 7, 0, H1))
bad[4] |= 0x08  # an unknown flag, checksum fixed up
bad[32:] = struct.pack("<Q", fnv1a(bytes(bad[:32])))
write("cache_value", "unknown-flag", value_seed(H1, H2, 3, 7, 0, 8, bytes(bad)))
write("cache_value", "truncated", value_seed(H1, H2, 3, 7, 0, 1, cache_value(3, 7, 0, H1)[:39]))
write("cache_value", "redis-error-reply", value_seed(H1, H2, 1, 3, 0, 1, b"-ERR wrong type"))
write("cache_value", "empty", value_seed(H1, H2, 1, 3, 0, 1, b""))
for i in range(6):
    write("cache_value", f"random-{i}", [rng.randrange(256) for _ in range(rng.choice([34, 74, 120]))])


# ---- log_record: mode byte, then a raw stream entry or a record to build --
def log_record(actor, action, resource, policy=b"", risk=b"", context=b"",
               flags=0, source=0, fmt=1, tagged=True, size=None, decided_at=0):
    """src/core/log_record.c's layout, host order (little-endian here): a 40-byte
    header, the strings, zero padding to 8; tagged: the stream magic first."""
    body_len = 40 + len(actor) + len(action) + len(resource) + len(policy) + len(risk) + len(context)
    padded = (body_len + 7) & ~7
    header = struct.pack("<Iiqq4HIBBBB", padded if size is None else size, 0, decided_at, 1,
                         len(actor), len(action), len(resource), len(policy), len(context),
                         len(risk), flags, source, fmt)
    record = header + actor + action + resource + policy + risk + context
    record += bytes(padded - body_len) if size is None else b""
    return (b"dlog2\0\0\0" if tagged else b"") + record


def raw_seed(entry):
    return [0] + list(entry)


write("log_record", "valid-allow", raw_seed(log_record(
    b"user:alice", b"read", b"doc:42", b"staff-read", b"low", b'{"ip": "10.0.0.7"}', flags=3, source=2)))
write("log_record", "valid-deny-default", raw_seed(log_record(b"user:bob", b"write", b"doc:1")))
write("log_record", "valid-unknown-deny", raw_seed(log_record(
    b"user:x", b"read", b"doc:1", b"mfa", b"high", b'{"a": [1, 2.5, "\\u001f"]}', flags=6)))
# The attack on 0.6.0: a plain record whose 8 context bytes claim a 1 GB jsonb.
write("log_record", "v060-huge-jsonb-header", raw_seed(log_record(
    b"a", b"b", b"c", context=b"\xfc\xff\xff\xff\x00\x00\x00\x00", fmt=0, tagged=False, size=51)))
write("log_record", "v060-no-context", raw_seed(log_record(
    b"user:a", b"read", b"doc:1", b"p", b"low", flags=3, fmt=0, tagged=False)))
write("log_record", "allow-without-policy", raw_seed(log_record(b"user:a", b"read", b"doc:1", flags=1)))
write("log_record", "bad-json", raw_seed(log_record(b"user:a", b"read", b"doc:1", context=b'{"a": 1e999999}')))
write("log_record", "glob-uid", raw_seed(log_record(b"user:*", b"read", b"doc:1")))
write("log_record", "deep-json", raw_seed(log_record(b"u", b"r", b"d", context=b'{"a": ' + b"[" * 1200 + b"]" * 1200 + b"}")))
for flags in range(0, 64, 5):
    write("log_record", f"build-{flags:02d}", [128 + flags, flags, 9, 4, 6, 12, rng.randrange(256), 1] +
          [rng.randrange(256) for _ in range(80)])
