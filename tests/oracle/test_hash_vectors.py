"""test_hash_vectors.py -- hash v1 against an independent implementation.

The oracle is Python's xxhash package (Debian python3-xxhash, bindings of
the reference xxHash C library, used here only through xxh3_64_intdigest)
plus a from-the-spec implementation of the seed, position and arm layout
written below, independently of core/assign.c. Checked:

1. every vector published in docs/hashing.md (seed, h, position, arm)
   equals the oracle and equals tests/tool_hash (our C code);
2. the golden vectors of tests/unit/test_assign.c ("do not update") equal the
   published ones, so the docs and the C contract cannot drift apart;
3. the reference implementation printed in docs/hashing.md reproduces the
   published vectors;
4. 3000 random cases (random purposes, salts up to 700 bytes -- the C
   code's streaming path starts above 493 --, versions over the whole u32
   range, unit ids of 1..256 random bytes, UTF-8 or not) agree between
   tool_hash and the oracle.
"""
import os
import random
import re
import struct
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tools"))
import harness  # noqa: E402

import xxhash  # noqa: E402

DOC = os.path.join(harness.ROOT, "docs", "hashing.md")
GOLDEN_C = os.path.join(harness.ROOT, "tests", "unit", "test_assign.c")
TOOL = os.path.join(harness.BUILD, "tests", "tool_hash")
M64 = (1 << 64) - 1


def oracle_seed(purpose, salt, version):
    data = (b"arbiter.v1" + purpose + struct.pack("<I", len(salt)) + salt +
            struct.pack("<I", version))
    return xxhash.xxh3_64_intdigest(data)


def oracle(purpose, salt, version, unit):
    seed = oracle_seed(purpose, salt, version)
    h = xxhash.xxh3_64_intdigest(unit, seed=seed)
    pos = ((h >> 32) * 1000000) >> 32
    # sample layout: control 50 % (control, last), a 30 %, b 20 %
    arm = "a" if pos < 300000 else "b" if pos < 500000 else "control"
    return seed, h, pos, arm


def run_tool(cases):
    lines = "".join("%s\t%s\t%d\t%s\n" % (p.decode(), s.hex(), v, u.hex())
                    for p, s, v, u in cases)
    out = subprocess.run([TOOL], input=lines, capture_output=True, text=True,
                         check=True, timeout=120).stdout.splitlines()
    res = []
    for line in out:
        seed, h, pos, arm = line.split("\t")
        res.append((int(seed, 16), int(h, 16), int(pos), arm))
    return res


def published_vectors():
    rows = []
    with open(DOC, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"\| ([ACL]) \| `([^`]*)` \| `([0-9a-f]*)` \| (\d+) "
                         r"\| `([^`]*)` \| `([0-9a-f]*)` \| `([0-9a-f]{16})` "
                         r"\| `([0-9a-f]{16})` \| (\d+) \| (\w+) \|", line)
            if m:
                g = m.groups()
                rows.append({
                    "p": g[0].encode(), "salt": bytes.fromhex(g[2]),
                    "salt_text": g[1], "v": int(g[3]),
                    "unit": bytes.fromhex(g[5]), "unit_text": g[4],
                    "seed": int(g[6], 16), "h": int(g[7], 16),
                    "pos": int(g[8]), "arm": g[9]})
    return rows


def c_string(literals):
    """Concatenate C string literals ("a" "\\xc5" ...) into bytes."""
    out = b""
    for lit in re.findall(r'"((?:[^"\\]|\\.)*)"', literals):
        i = 0
        while i < len(lit):
            if lit[i] == "\\" and lit[i + 1] == "x":
                j = i + 2
                while j < len(lit) and lit[j] in "0123456789abcdefABCDEF":
                    j += 1
                out += bytes([int(lit[i + 2:j], 16)])
                i = j
            else:
                out += lit[i].encode()
                i += 1
    return out


def c_golden_vectors():
    with open(GOLDEN_C, encoding="utf-8") as f:
        src = f.read()
    table = src[src.index("} golden[] = {"):]
    table = table[:table.index("};")]
    rows = []
    for g in re.findall(r"\{ '([ACL])', (.*?), (\d+)u,\s*(.*?),\s*"
                        r"0x([0-9a-f]{16})ull, 0x([0-9a-f]{16})ull, (\d+), "
                        r"\"(\w+)\" \}", table, re.S):
        rows.append((g[0].encode(), c_string(g[1]), int(g[2]),
                     c_string(g[3]), int(g[4], 16), int(g[5], 16),
                     int(g[6]), g[7]))
    return rows


def ucs(rng):
    """A random Unicode scalar value (no surrogates), astral ones too."""
    cp = rng.choice([rng.randrange(0x20, 0x7f), rng.randrange(0xa0, 0x800),
                     rng.randrange(0x800, 0xd800),
                     rng.randrange(0xe000, 0x110000)])
    return chr(cp)


class HashVectors(unittest.TestCase):
    def test_published_vectors_match_the_oracle_and_the_c_code(self):
        rows = published_vectors()
        self.assertGreaterEqual(len(rows), 20)
        # ASCII and non-ASCII ids, several salts and versions are covered
        self.assertTrue(any(max(r["unit"]) > 127 for r in rows))
        self.assertTrue(any(max(r["salt"]) > 127 for r in rows))
        self.assertGreaterEqual(len({r["v"] for r in rows}), 4)
        self.assertEqual({r["p"] for r in rows}, {b"A", b"C", b"L"})
        tool = run_tool([(r["p"], r["salt"], r["v"], r["unit"])
                         for r in rows])
        for r, t in zip(rows, tool):
            self.assertEqual(r["salt"], r["salt_text"].encode("utf-8"))
            self.assertEqual(r["unit"], r["unit_text"].encode("utf-8"))
            want = (r["seed"], r["h"], r["pos"], r["arm"])
            self.assertEqual(oracle(r["p"], r["salt"], r["v"], r["unit"]),
                             want, r)
            self.assertEqual(t, want, r)

    def test_c_golden_vectors_are_the_published_ones(self):
        c = c_golden_vectors()
        pub = [(r["p"], r["salt"], r["v"], r["unit"], r["seed"], r["h"],
                r["pos"], r["arm"]) for r in published_vectors()]
        self.assertGreaterEqual(len(c), 20)
        self.assertEqual(c, pub)
        # the end-to-end table of the docs is the one core_assign checks
        with open(GOLDEN_C, encoding="utf-8") as f:
            c_e2e = re.findall(r'\{ "(user-\d)", (\d+), "(\w+)" \}', f.read())
        with open(DOC, encoding="utf-8") as f:
            doc_e2e = re.findall(r"\| `(user-\d)` \| (\d+) \| (\w+) \|",
                                 f.read())
        self.assertEqual(len(c_e2e), 10)
        self.assertEqual(c_e2e, doc_e2e)

    def test_reference_implementation_in_the_docs(self):
        with open(DOC, encoding="utf-8") as f:
            text = f.read()
        code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
        ns = {}
        exec(code, ns)  # noqa: S102 -- our own published snippet
        arms = [("control", 500000, True), ("a", 300000, False),
                ("b", 200000, False)]
        for r in published_vectors():
            pos = ns["position"](r["p"].decode(), r["salt_text"], r["v"],
                                 r["unit_text"])
            self.assertEqual(pos, r["pos"])
            self.assertEqual(ns["arm"](arms, pos), r["arm"])
        # the end-to-end table: salt checkout-button, bucket_version 1
        e2e = re.findall(r"\| `(user-\d)` \| (\d+) \| (\w+) \|", text)
        self.assertEqual(len(e2e), 10)
        for unit, bucket, arm in e2e:
            pos = ns["position"]("A", "checkout-button", 1, unit)
            self.assertEqual(pos, int(bucket))
            self.assertEqual(ns["arm"](arms, pos), arm)

    def test_random_inputs_agree(self):
        rng = random.Random(20261123)
        cases = []
        for i in range(3000):
            p = rng.choice([b"A", b"C", b"L"])
            kind = i % 4
            if kind == 0:      # long salts: the streaming path in C
                salt = bytes(rng.randrange(256)
                             for _ in range(rng.randrange(480, 701)))
            else:
                salt = "".join(chr(rng.choice([rng.randrange(32, 127),
                                               rng.randrange(0xa0, 0x3000)]))
                               for _ in range(rng.randrange(0, 65))
                               ).encode("utf-8")
            v = rng.choice([0, 1, 2, rng.randrange(1 << 32), (1 << 32) - 1])
            n = rng.randrange(1, 257)
            if kind == 1:      # arbitrary bytes, NUL included: ids are
                unit = bytes(rng.randrange(256) for _ in range(n))  # (ptr, len)
            else:
                unit = "".join(ucs(rng) for _ in range(n)).encode("utf-8")[:256]
                unit = unit.decode("utf-8", "ignore").encode("utf-8") or b"x"
            cases.append((p, salt, v, unit))
        got = run_tool(cases)
        self.assertEqual(len(got), len(cases))
        for c, g in zip(cases, got):
            self.assertEqual(g, oracle(*c), c)
        # and the positions are usable: all in range, spread over [0, 1e6)
        pos = [g[2] for g in got]
        self.assertTrue(all(0 <= x < 1000000 for x in pos))
        self.assertLess(min(pos), 5000)
        self.assertGreater(max(pos), 995000)


if __name__ == "__main__":
    harness.main()
