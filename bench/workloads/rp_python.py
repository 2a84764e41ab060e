# rp_python.py: the real-python workload of hkbench (bench/README.md).
# Debian's python3 builds and drops millions of objects (dicts, lists,
# tuples, strings, bytes, small class instances) in a few threads, keeps a
# growing and shrinking table of records, and prints a deterministic
# summary. The runner compares that output with an untimed glibc run: an
# allocator that corrupts memory changes it (or crashes the interpreter).
#
# The work is eight fixed tasks shared out over the threads (task k runs on
# thread k % threads), so the output does not depend on the thread count
# or on how the GIL interleaves the threads.
#
# Usage: python3 rp_python.py [--scale S] [--threads N]
#   --scale S    work multiplier (1: about 1.5 s on one 2020s core with
#                PYTHONMALLOC=malloc); at least one round of every phase runs
#   --threads N  threads (default 2)
import sys
import threading
import zlib

TASKS = 8


class Rec:
    __slots__ = ("key", "name", "tags", "parent")

    def __init__(self, key, name, tags, parent):
        self.key = key
        self.name = name
        self.tags = tags
        self.parent = parent


def mix(h, v):
    """A 61-bit running checksum: order-sensitive, no hash() (seeded)."""
    return (h * 1000003 + v) % 2305843009213693951


def task(t, n):
    """About 30 * n objects built and dropped; returns (objects, checksum)."""
    h = t + 1
    objects = 0
    # 1. Rounds of short-lived records: a window of the last 2000 is kept,
    #    the rest dropped as the window moves (a server's request churn).
    window = []
    for i in range(n):
        k = (i * 2654435761 + t * 40503) & 0xFFFFFFFF
        d = {"id": k, "name": "user-%d" % (k % 100000), "score": k % 1000,
             "tags": ["t%d" % (k % 7), "u%d" % (k % 13)], "pos": (k & 255, k >> 24)}
        if k % 3 == 0:
            d["note"] = "x" * (k % 120)
        if k % 5 == 0:
            d["rec"] = Rec(k, d["name"], tuple(d["tags"]), None)
        window.append(d)
        objects += 8
        if len(window) > 2000:
            old = window[: len(window) - 2000]
            del window[: len(window) - 2000]
            for o in old[::97]:
                h = mix(h, o["id"] + len(o["name"]) + o["score"])
    for o in window[::50]:
        h = mix(h, o["id"])
    del window

    # 2. A table that grows to n // 2 entries, then loses three in four and
    #    grows again: dict resizing, long-lived objects among short-lived ones.
    table = {}
    for i in range(n // 2):
        key = "k%07d" % ((i * 7919) % (n // 2 + 1))
        table[key] = [i, str(i), bytes(i % 64)]
        objects += 5
    h = mix(h, len(table))
    for i, key in enumerate(sorted(table)):
        if i % 4:
            del table[key]
    for i in range(n // 4):
        table["g%d" % i] = (i, "v" * (i % 32))
        objects += 3
    h = mix(h, len(table))
    h = mix(h, sum(len(v[1]) for v in table.values()))
    del table

    # 3. Strings: formatting, joining, splitting and growing ones.
    parts = ["%x:%d" % (i * 31 + t, i % 97) for i in range(n // 2)]
    objects += n // 2
    s = ",".join(parts)
    pieces = s.split(",")
    h = mix(h, len(s))
    h = mix(h, zlib.crc32(s.encode()))
    h = mix(h, len(pieces))
    grow = ""
    for i in range(min(n // 10, 20000)):
        grow += "%d;" % i
    h = mix(h, zlib.crc32(grow.encode()))
    objects += len(pieces)
    del parts, pieces, s, grow

    # 4. A tree of records, walked, then dropped at once.
    root = Rec(0, "root", (), None)
    level = [root]
    count = 1
    while count < n // 2:
        nxt = []
        for node in level:
            for c in range(4):
                nxt.append(Rec(node.key * 4 + c, "n%d" % c, (c,), node))
        count += len(nxt)
        level = nxt
    h = mix(h, count)
    h = mix(h, sum(r.key for r in level[::101]) % 1000000007)
    objects += 3 * count
    del root, level, nxt
    return objects, h


def main():
    scale, threads = 1.0, 2
    args = sys.argv[1:]
    i = 0
    while i < len(args):
        if args[i] == "--scale" and i + 1 < len(args):
            scale = float(args[i + 1])
        elif args[i] == "--threads" and i + 1 < len(args):
            threads = int(args[i + 1])
        else:
            sys.stderr.write("usage: rp_python.py [--scale S] [--threads N]\n")
            return 2
        i += 2
    if not 0 < scale <= 1000 or not 1 <= threads <= 256:
        sys.stderr.write("rp_python.py: --scale in (0, 1000], --threads in 1..256\n")
        return 2
    n = max(2000, int(20000 * scale))
    results = [None] * TASKS

    def run(first):
        for k in range(first, TASKS, threads):
            results[k] = task(k, n)

    pool = [threading.Thread(target=run, args=(f,)) for f in range(min(threads, TASKS))]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    total = 0
    for k, r in enumerate(results):
        if r is None:
            sys.stderr.write("rp_python.py: task %d did not finish\n" % k)
            return 1
        print("task", k, "objects", r[0], "check", r[1])
        total += r[0]
    print("n", n, "objects", total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
