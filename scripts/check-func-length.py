#!/usr/bin/python3
"""check-func-length.py -- list product functions longer than a limit.

    scripts/check-func-length.py [--max N] [files or folders...]

Defaults: --max 120 over the product folders (cli api service codec sql
core bandits stats lib). A function is counted the house way (STYLE.md,
section 10): its name starts a line at column 0 and is followed by '(',
its body opens with '{' at column 0 and closes with '}' at column 0; the
length is from the name line to the closing brace, inclusive. Prints
"file:line: name: N lines" for each one over the limit and exits 1 when
there is one, so CI can run it.
"""
import os
import re
import sys

PRODUCT = ["cli", "api", "service", "codec", "sql", "core", "bandits",
           "stats", "lib"]
NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def functions(path):
    """Yield (name, first line, length) for each function in path."""
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = f.read().split("\n")
    i = 0
    while i < len(lines):
        m = NAME.match(lines[i])
        if not m or m.group(1) in ("if", "for", "while", "switch", "return"):
            i += 1
            continue
        # the parameter list may run over lines; the body opens at col 0
        j = i
        while j < len(lines) and not lines[j].startswith("{"):
            if lines[j].rstrip().endswith(";") or lines[j].startswith("}"):
                break
            j += 1
        if j >= len(lines) or not lines[j].startswith("{"):
            i += 1
            continue
        k = j + 1
        while k < len(lines) and not lines[k].startswith("}"):
            k += 1
        yield m.group(1), i + 1, k - i + 1
        i = k + 1


def sources(args):
    for a in args:
        if os.path.isdir(a):
            for root, _, files in os.walk(a):
                for name in sorted(files):
                    if name.endswith(".c"):
                        yield os.path.join(root, name)
        elif a.endswith(".c"):
            yield a


def main(argv):
    limit = 120
    if len(argv) > 2 and argv[1] == "--max":
        limit = int(argv[2])
        argv = argv[:1] + argv[3:]
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    os.chdir(here)
    targets = argv[1:] or [d for d in PRODUCT if os.path.isdir(d)]
    long_ones = []
    for path in sorted(sources(targets)):
        for name, line, n in functions(path):
            if n > limit:
                long_ones.append((path, line, name, n))
    for path, line, name, n in long_ones:
        print("%s:%d: %s: %d lines (limit %d)" % (path, line, name, n, limit))
    return 1 if long_ones else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
