#!/usr/bin/python3
"""What a WAL-style flush costs on this disk: pwrite + fdatasync, bare.

Each of --threads threads appends --size-byte records at offsets taken in
turn from one counter and calls fdatasync after each, into a 64 MiB file
that is either `fallocate`d first (ext4 leaves such blocks unwritten, and
the first write into one changes the block map) or filled with written
zeros first (a rewrite of written blocks). Prints flushes per second and
the mean time per flush, per thread.

    /usr/bin/python3 bench/flush_probe.py --dir /var/tmp --size 4096 --count 2000 --threads 1

The file is created in --dir (default: the current directory: put it on
the disk under test) and removed at the end.
"""

import argparse
import os
import threading
import time

SEGMENT = 64 << 20


def prepare(path, mode):
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    if mode == "fallocate":
        os.posix_fallocate(fd, 0, SEGMENT)
    else:
        zeros = bytes(1 << 20)
        for offset in range(0, SEGMENT, len(zeros)):
            os.pwrite(fd, zeros, offset)
        os.fsync(fd)
    return fd


def run(fd, size, count, threads):
    record = b"x" * size
    next_offset = [0]
    lock = threading.Lock()

    def writer():
        for _ in range(count):
            with lock:
                offset = next_offset[0]
                next_offset[0] += size
            os.pwrite(fd, record, offset)
            os.fdatasync(fd)

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.monotonic() - start


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=".")
    p.add_argument("--size", type=int, default=4096, help="bytes per record")
    p.add_argument("--count", type=int, default=2000, help="records per thread")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--modes", default="zeros,fallocate")
    args = p.parse_args()
    if args.size * args.count * args.threads > SEGMENT:
        p.error("the records must fit in 64 MiB")
    path = os.path.join(args.dir, f"flush_probe.{os.getpid()}")
    try:
        for mode in args.modes.split(","):
            fd = prepare(path, mode)
            elapsed = run(fd, args.size, args.count, args.threads)
            os.close(fd)
            flushes = args.count * args.threads
            print(f"{mode:9} size {args.size} threads {args.threads}: "
                  f"{flushes / elapsed:,.0f} flushes/s, "
                  f"{elapsed / args.count * 1e6:.1f} us per flush per thread")
    finally:
        if os.path.exists(path):
            os.remove(path)


if __name__ == "__main__":
    main()
