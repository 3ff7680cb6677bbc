#!/usr/bin/env python3
"""Small helpers for bench/run.sh: free ports, port waits, cold start timing, RSS of a
process tree, idle-connection backend and client, and parsers for the load generators'
output. Standard library only. Every subcommand is bounded in time.

    benchtool.py freeport USED_FILE
    benchtool.py waitport PORT [TIMEOUT_S]
    benchtool.py coldstart PORT RUNS -- CMD...        (prints one ms figure per run)
    benchtool.py rss PID                              (prints "rss_kib pss_kib nprocs fds")
    benchtool.py cpu PID                              (prints "cpu_seconds monotonic_seconds")
    benchtool.py snap PID                             (prints "busy_s steal_s ours_s monotonic_s")
    benchtool.py hold-server PORT COUNT_FILE          (accepts and holds connections)
    benchtool.py idle-client PORT N MODE READY_FILE   (MODE: l4 or http; holds until killed)
    benchtool.py waitcount FILE N TIMEOUT_S           (waits until FILE holds a number >= N)
    benchtool.py parse-iperf3 FILE | parse-wrk FILE | parse-h2load FILE
"""

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time


def freeport(used_file):
    """A 127.0.0.1 TCP port nobody listens on now, never one handed out before in this run."""
    used = set()
    if os.path.exists(used_file):
        with open(used_file) as f:
            used = {int(x) for x in f.read().split()}
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in used:
            continue
        # The same number must be free for UDP too (sluice binds both).
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
        except OSError:
            continue
        with open(used_file, "a") as f:
            f.write(f"{port}\n")
        print(port)
        return 0
    print("no free port found", file=sys.stderr)
    return 1


def can_connect(port):
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def waitport(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if can_connect(port):
            return 0
        time.sleep(0.005)
    print(f"port {port}: nothing accepted within {timeout}s", file=sys.stderr)
    return 1


def stop_group(proc):
    """SIGTERM the process group of proc, then SIGKILL what is left after 5 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    # Workers of a master (nginx) may outlive it by a moment.
    for _ in range(500):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def coldstart(port, runs, cmd):
    """Time from exec to the first accepted TCP connect on port, polling every 1 ms."""
    for _ in range(runs):
        deadline = time.monotonic() + 5
        while can_connect(port) and time.monotonic() < deadline:
            time.sleep(0.05)  # the previous run's listener is still going away
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        took = None
        while time.perf_counter() - t0 < 10:
            with socket.socket() as s:
                try:
                    s.connect(("127.0.0.1", port))
                    took = time.perf_counter() - t0
                    break
                except OSError:
                    pass
            if proc.poll() is not None:
                break
            time.sleep(0.001)
        stop_group(proc)
        if took is None:
            print(f"coldstart: {cmd[0]} never accepted on {port}", file=sys.stderr)
            return 1
        print(f"{took * 1000:.2f}")
    return 0


def tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kib(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss(pid):
    pids = tree(pid)
    rss_kib = sum(status_kib(f"/proc/{p}/status", "VmRSS") for p in pids)
    pss_kib = sum(status_kib(f"/proc/{p}/smaps_rollup", "Pss") for p in pids)
    fds = 0
    for p in pids:
        try:
            fds += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    print(rss_kib, pss_kib, len(pids), fds)
    return 0


def cpu(pid):
    """CPU time (user + system) used so far by pid and its descendants, and a timestamp."""
    ticks = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    print(f"{ticks / os.sysconf('SC_CLK_TCK'):.2f} {time.monotonic():.3f}")
    return 0


def proc_cpu(pid, children=False):
    """utime + stime (+ cutime + cstime of reaped children) of one process, in ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def snap(pid):
    """Machine-wide busy CPU time (user + nice + system, all CPUs), steal time, and the CPU
    time of pid's whole tree including reaped descendants, all in seconds, plus a timestamp.
    Two snapshots give how much CPU other processes on the machine took in between."""
    hz = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    busy = cpu[0] + cpu[1] + cpu[2]
    steal = cpu[7] if len(cpu) > 7 else 0
    ours = sum(proc_cpu(p, children=True) for p in tree(pid))
    print(f"{busy / hz:.2f} {steal / hz:.2f} {ours / hz:.2f} {time.monotonic():.3f}")
    return 0


def write_count(path, n):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{n}\n")
    os.replace(tmp, path)


def hold_server(port, count_file):
    """Accept connections and keep them open, reading and dropping whatever comes."""
    open_now = 0

    async def handle(reader, writer):
        nonlocal open_now
        open_now += 1
        try:
            while await reader.read(65536):
                pass
        except OSError:
            pass
        finally:
            open_now -= 1
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        last = -1
        async with server:
            while True:
                if open_now != last:
                    last = open_now
                    write_count(count_file, last)
                await asyncio.sleep(0.1)

    write_count(count_file, 0)
    asyncio.run(main())
    return 0


HTTP_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: sluice-bench\r\n\r\n"


async def http_exchange(reader, writer):
    writer.write(HTTP_REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if not head.startswith(b"HTTP/1.1 200") or not m:
        raise OSError("unexpected response: " + head[:40].decode(errors="replace"))
    await reader.readexactly(int(m.group(1)))


def idle_client(port, n, mode, ready_file, concurrency=200, timeout=90.0):
    """Open n connections to port (l4: send one byte; http: one keep-alive request and its
    response), report how many are up in ready_file, then hold them until SIGTERM."""
    conns = []
    failed = 0

    async def one(sem):
        nonlocal failed
        async with sem:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 5)
                if mode == "http":
                    await asyncio.wait_for(http_exchange(reader, writer), 5)
                else:
                    writer.write(b"x")
                    await writer.drain()
                conns.append((reader, writer))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError):
                failed += 1

    async def main():
        sem = asyncio.Semaphore(concurrency)
        await asyncio.wait_for(asyncio.gather(*(one(sem) for _ in range(n))), timeout)
        write_count(ready_file, len(conns))
        if failed:
            print(f"idle-client: {failed} of {n} connections failed", file=sys.stderr)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        # Hold at most 10 minutes in case nobody stops us.
        try:
            await asyncio.wait_for(stop.wait(), 600)
        except asyncio.TimeoutError:
            pass

    try:
        asyncio.run(main())
    except asyncio.TimeoutError:
        write_count(ready_file, len(conns))
        print(f"idle-client: timed out with {len(conns)} of {n} up", file=sys.stderr)
        return 1
    return 0


def waitcount(path, n, timeout):
    """Wait until path holds a number >= n or stops growing; print the last number."""
    deadline = time.monotonic() + timeout
    last, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                v = int(f.read().strip() or -1)
        except (OSError, ValueError):
            v = -1
        if v != last:
            last, last_change = v, time.monotonic()
        if v >= n:
            break
        if v >= 0 and time.monotonic() - last_change > 5:
            break  # stuck below n: report what we have
        time.sleep(0.05)
    print(max(last, 0))
    return 0


def parse_iperf3(path):
    with open(path) as f:
        data = json.load(f)
    if "error" in data:
        print(f"iperf3: {data['error']}", file=sys.stderr)
        return 1
    print(f"{data['end']['sum_received']['bits_per_second'] / 1e9:.3f}")
    return 0


def parse_wrk(path):
    """Prints requests/s and a one-word error summary ("0", or e.g. "read=12,non2xx=3")."""
    text = open(path).read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        print("wrk: no Requests/sec in output", file=sys.stderr)
        return 1
    errors = []
    e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if e:
        for name, count in zip(("connect", "read", "write", "timeout"), e.groups()):
            if int(count):
                errors.append(f"{name}={count}")
    n = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if n:
        errors.append(f"non2xx={n.group(1)}")
    print(f"{float(m.group(1)):.0f} {','.join(errors) or 0}")
    return 0


def parse_h2load(path):
    """Prints requests/s and the number of failed or errored requests."""
    text = open(path).read()
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", text)
    r = re.search(r"requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, "
                  r"(\d+) errored", text)
    if not m or not r:
        print("h2load: no result line in output", file=sys.stderr)
        return 1
    print(f"{float(m.group(1)):.0f} {int(r.group(1)) + int(r.group(2))}")
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "freeport":
        return freeport(args[0])
    if cmd == "waitport":
        return waitport(int(args[0]), float(args[1]) if len(args) > 1 else 10.0)
    if cmd == "coldstart":
        sep = args.index("--")
        return coldstart(int(args[0]), int(args[1]), args[sep + 1:])
    if cmd == "rss":
        return rss(int(args[0]))
    if cmd == "cpu":
        return cpu(int(args[0]))
    if cmd == "snap":
        return snap(int(args[0]))
    if cmd == "hold-server":
        return hold_server(int(args[0]), args[1])
    if cmd == "idle-client":
        return idle_client(int(args[0]), int(args[1]), args[2], args[3])
    if cmd == "waitcount":
        return waitcount(args[0], int(args[1]), float(args[2]))
    if cmd == "parse-iperf3":
        return parse_iperf3(args[0])
    if cmd == "parse-wrk":
        return parse_wrk(args[0])
    if cmd == "parse-h2load":
        return parse_h2load(args[0])
    print(f"unknown subcommand {cmd}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
