#!/usr/bin/env python3
"""The disk's own fsync latency at the ledger's half-peak pace.

Writes 44 KB (64 records of ~680 B) and fdatasync()s it 640 times a second
for 5 s: on an otherwise idle disk; while another thread writes 64 MB files
the way a RocksDB memtable flush does; and while another thread writes
100 MB/s in synced 1 MB steps into 64 MB files, once keeping the files and
once deleting each (as RocksDB deletes obsolete WAL and SST files; on a
file system mounted with `discard`, freeing blocks sends the device a
discard that later syncs wait behind). Prints p50/p99.
Usage: python3 tools/scripts/fsync_probe.py [DIR] (default: the current dir).
See docs/performance.md.
"""
import os
import sys
import threading
import time

DIR = sys.argv[1] if len(sys.argv) > 1 else "."
RATE, COUNT, SIZE = 640, 3200, 44_000


def background(stop):
    path = os.path.join(DIR, "fsync-probe-bg")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        while not stop.is_set():
            for _ in range(64):
                os.write(fd, b"y" * (1 << 20))
            os.fsync(fd)
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            time.sleep(0.8)
    finally:
        os.close(fd)
        os.unlink(path)


def steady(stop, delete):
    """100 MB/s in synced 1 MB steps, a new file every 64 MB."""
    files, n = [], 0
    fd = None
    try:
        while not stop.is_set():
            started = time.monotonic()
            if n % 64 == 0:
                if fd is not None:
                    os.close(fd)
                files.append(os.path.join(DIR, f"fsync-probe-steady-{n // 64}"))
                fd = os.open(files[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                if delete and len(files) > 2:
                    os.unlink(files.pop(0))
            os.write(fd, b"y" * (1 << 20))
            os.fdatasync(fd)
            n += 1
            time.sleep(max(0.0, 0.01 - (time.monotonic() - started)))
    finally:
        os.close(fd)
        for f in files:
            os.unlink(f)


def probe(label, with_background, target=background, args=()):
    stop = threading.Event()
    bg = threading.Thread(target=target, args=(stop, *args))
    if with_background:
        bg.start()
    path = os.path.join(DIR, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    latencies = []
    start = time.monotonic()
    for n in range(COUNT):
        due = start + n / RATE
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        os.write(fd, b"x" * SIZE)
        os.fdatasync(fd)
        latencies.append(time.monotonic() - due)
    os.close(fd)
    os.unlink(path)
    stop.set()
    if with_background:
        bg.join()
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1e3
    p99 = latencies[int(len(latencies) * 0.99)] * 1e3
    print(f"{label}: p50 {p50:.2f} ms  p99 {p99:.2f} ms  max {latencies[-1] * 1e3:.2f} ms")


probe("44 KB write + fdatasync, 640/s, idle disk", False)
probe("the same while 64 MB files are written back", True)
time.sleep(2)
probe("the same while 100 MB/s are synced in 1 MB steps, files kept", True, steady, (False,))
time.sleep(2)
probe("the same while 100 MB/s are synced in 1 MB steps, files deleted", True, steady, (True,))
