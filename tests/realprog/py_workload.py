# py_workload.py: a Python workload for test_python.sh. It builds and drops
# millions of objects (dicts, lists, tuples, strings, bytes, sets, class
# instances, big lists and strings that realloc) in several threads at once,
# then does more in a pool of forked worker processes while a thread of the
# parent keeps allocating. Everything it prints is deterministic (sorted,
# summed or hashed), so a run on glibc and a run on heapkit must print the
# same text.
# Usage: python3 py_workload.py SCALE   (SCALE 1 = a few seconds)
import hashlib
import multiprocessing
import sys
import threading

SCALE = float(sys.argv[1]) if len(sys.argv) > 1 else 1.0


class Node:
    __slots__ = ("key", "value", "children")

    def __init__(self, key, value):
        self.key = key
        self.value = value
        self.children = []


class Record:
    def __init__(self, i):
        self.i = i
        self.name = "record-%d" % i
        self.tags = {"t%d" % (i % 7), "u%d" % (i % 11)}


def churn(seed, n):
    """Builds and drops about 10*n objects; returns a digest of what it saw."""
    h = hashlib.sha256()
    total = 0
    table = {}
    for rnd in range(4):
        objs = []
        for i in range(n // 4):
            k = (i * 2654435761 + seed * 97 + rnd) & 0xFFFFFFFF
            d = {"k": k, "s": str(k), "t": (k, k >> 3, "x" * (k % 40))}
            objs.append(d)
            if k % 3 == 0:
                objs.append([k, str(k)[::-1], bytes(k % 200)])
            if k % 5 == 0:
                objs.append(Record(k))
            if k % 7 == 0:
                table[k % 50000] = Node(k, [k] * (k % 20))
        # strings and lists that grow (realloc)
        s = ""
        big = []
        for i in range(2000):
            s += "%x," % (i * seed)
            big.extend(range(i % 50))
        total += len(s) + len(big)
        for o in objs[:: max(1, len(objs) // 1000)]:
            h.update(repr(sorted(o.items())).encode() if isinstance(o, dict) else
                     repr(o.i if isinstance(o, Record) else o).encode())
        total += len(objs)
        del objs
    # a tree, then dropped
    root = Node(0, None)
    level = [root]
    for depth in range(6):
        nxt = []
        for node in level:
            for c in range(6):
                child = Node(node.key * 6 + c, str(node.key))
                node.children.append(child)
                nxt.append(child)
        level = nxt
    total += len(level)
    del root, level
    total += sum(len(v.value) for v in table.values())
    h.update(str(total).encode())
    return total, h.hexdigest()[:16]


def worker_proc(args):
    seed, n = args
    total, digest = churn(seed, n)
    text = " ".join(str(i * seed) for i in range(20000))
    return seed, total, digest, hashlib.md5(text.encode()).hexdigest()[:12]


def main():
    n = int(200000 * SCALE)
    results = {}
    lock = threading.Lock()

    def run(seed):
        r = churn(seed, n)
        with lock:
            results[seed] = r

    threads = [threading.Thread(target=run, args=(s,)) for s in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in sorted(results):
        print("thread", seed, *results[seed])

    # Forked workers while a thread of the parent keeps allocating.
    stop = threading.Event()
    background = []

    def keep_busy():
        i = 0
        while not stop.is_set():
            background.append({"i": i, "s": "b" * (i % 300)})
            if len(background) > 20000:
                del background[:10000]
            i += 1

    bt = threading.Thread(target=keep_busy)
    bt.start()
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        out = pool.map(worker_proc, [(s, n // 4) for s in range(10, 18)])
    stop.set()
    bt.join()
    for row in sorted(out):
        print("process", *row)

    # One big structure, then a sort of a million strings.
    words = ["%08d" % ((i * 7919) % 1000003) for i in range(int(1000000 * SCALE))]
    words.sort()
    print("sorted", len(words), words[0], words[len(words) // 2], words[-1])
    print("done")


if __name__ == "__main__":
    main()
