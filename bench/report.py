#!/usr/bin/env python3
"""Render bench/run.sh's raw results as the markdown report (bench/RESULTS.md).

    report.py RESULTS_TSV META_TSV

RESULTS_TSV lines: metric <TAB> contender <TAB> kind <TAB> value, where kind is
  sample  one measured value (the table shows the median of a metric's samples),
  na      the contender cannot be measured here; value says why,
  note    a remark shown in the row's notes column.
META_TSV lines: key <TAB> value (machine, versions, settings; see run.sh).

Contender roles come from their names: "direct" is the ceiling, "sluice" is sluice, a name
starting with "sluice (" is an informative sluice figure that is not the equivalent of the
peers' (e.g. sluice as an L4 relay in an L7 scenario), every other name is a peer.
"""

import statistics
import os
import sys
from collections import OrderedDict

# metric id -> (column title, unit formatter, higher_is_better)
def f_num(v):
    return f"{v:,.0f}"


def f_gbit(v):
    return f"{v:.2f}"


def f_mib(kib):
    return f"{kib / 1024:.2f}"


def f_ms(v):
    return f"{v:.1f}"


def f_bytes(v):
    return f"{v:,.0f}"


def f_mb(b):
    return f"{b / 1e6:.2f}"


def f_pct(v):
    return f"{v:.0f}"


# Proxy CPU cost per unit of work, from the medians of a rate and of the proxy's CPU %:
# metric -> (column title, function(rate, cpu_pct) -> value, formatter).
EFFICIENCY = {
    "l4_tput": ("proxy CPU ms / GB", lambda gbit, pct: pct / 100 / (gbit / 8) * 1000, f_ms),
    "l4_connrate": ("proxy CPU µs / conn", lambda rate, pct: pct / 100 / rate * 1e6, f_ms),
    "http1": ("proxy CPU µs / req", lambda rate, pct: pct / 100 / rate * 1e6, f_ms),
    "http1_w2": ("proxy CPU µs / req", lambda rate, pct: pct / 100 / rate * 1e6, f_ms),
    "https1": ("proxy CPU µs / req", lambda rate, pct: pct / 100 / rate * 1e6, f_ms),
    "h2": ("proxy CPU µs / req", lambda rate, pct: pct / 100 / rate * 1e6, f_ms),
}
CPU_NOTE = ("With 2 cores, the load generator and the backend share CPU 0 and often limit the "
            "rate before the proxy does (a proxy below 100% of its core is not the "
            "bottleneck); the proxy's CPU time per unit of work compares the proxies' own cost.")


METRICS = {
    "l4_tput": ("Gbit/s", f_gbit, True),
    "l4_connrate": ("conns/s", f_num, True),
    "http1": ("req/s", f_num, True),
    "http1_w2": ("req/s", f_num, True),
    "https1": ("req/s", f_num, True),
    "h2": ("req/s", f_num, True),
    "l4_tput_cpu": ("proxy CPU (% of a core)", f_pct, False),
    "l4_connrate_cpu": ("proxy CPU (% of a core)", f_pct, False),
    "http1_cpu": ("proxy CPU (% of a core)", f_pct, False),
    "http1_w2_cpu": ("proxy CPU (% of a core)", f_pct, False),
    "https1_cpu": ("proxy CPU (% of a core)", f_pct, False),
    "h2_cpu": ("proxy CPU (% of a core)", f_pct, False),
    "idle_rss_l4": ("idle RSS (MiB)", f_mib, False),
    "idle_pss_l4": ("idle PSS (MiB)", f_mib, False),
    "loaded_rss_l4": ("RSS with idle conns (MiB)", f_mib, False),
    "reached_l4": ("idle conns held", f_num, True),
    "perconn_l4": ("bytes / idle conn", f_bytes, False),
    "idle_rss_http": ("idle RSS (MiB)", f_mib, False),
    "idle_pss_http": ("idle PSS (MiB)", f_mib, False),
    "loaded_rss_http": ("RSS with idle keep-alive conns (MiB)", f_mib, False),
    "reached_http": ("keep-alive conns held", f_num, True),
    "perconn_http": ("bytes / idle conn", f_bytes, False),
    "size_bin": ("binary (MB)", f_mb, False),
    "size_libs": ("binary + shared libs (MB)", f_mb, False),
    "coldstart_ms": ("exec → accepting (ms)", f_ms, False),
}

# (title, intro, metric columns, metrics that get ratio columns)
TABLES = [
    ("L4 TCP throughput",
     "iperf3, one TCP stream, client → proxy → iperf3 server; Gbit/s received, higher is "
     "better.",
     ["l4_tput"], ["l4_tput"]),
    ("L4 connection rate",
     "Short connections: wrk with `Connection: close` (one request of 100 bytes per "
     "connection, so requests/s = connections/s) through each L4 relay to the nginx backend; "
     "higher is better.",
     ["l4_connrate"], ["l4_connrate"]),
    ("HTTP/1.1 keep-alive, small responses",
     "wrk, keep-alive, 100-byte static file from the nginx backend; requests/s, higher is "
     "better.",
     ["http1"], ["http1"]),
    ("HTTP/1.1 keep-alive, two workers",
     "As above, each proxy with two workers (sluice `workers = 2`, nginx worker_processes 2, "
     "haproxy nbthread 2, caddy with two CPUs) and allowed on both CPUs; load generator and "
     "backend stay on CPU 0, so everything shares the two cores. sluice (1 worker) under the "
     "same placement shows what the second worker buys; requests/s, higher is better.",
     ["http1_w2"], ["http1_w2"]),
    ("HTTPS (HTTP/1.1 over TLS)",
     "wrk over TLS (self-signed P-256 certificate, TLS 1.3), keep-alive, same backend over "
     "plain HTTP/1.1 (direct: the backend's own TLS listener); requests/s, higher is better.",
     ["https1"], ["https1"]),
    ("HTTP/2 over TLS",
     "h2load, 10 concurrent streams per connection, same backend over plain HTTP/1.1 "
     "(direct: the backend's own h2 listener); requests/s, higher is better.",
     ["h2"], ["h2"]),
    ("Memory: L4 relays",
     "VmRSS summed over the proxy's processes (nginx: master + worker), and PSS for context. "
     "Idle = 1 s after start with the L4 config; then N idle connections are opened through "
     "the proxy to a backend that holds them (each sends one byte so that every relay has "
     "connected upstream). bytes / idle conn = (RSS loaded − RSS idle) / conns held. Lower is "
     "better.",
     ["idle_rss_l4", "idle_pss_l4", "loaded_rss_l4", "reached_l4", "perconn_l4"],
     ["idle_rss_l4", "perconn_l4"]),
    ("Memory: HTTP reverse proxies",
     "As above with the HTTP config, and idle HTTP/1.1 keep-alive client connections (each "
     "made one request and got its response). Lower is better.",
     ["idle_rss_http", "idle_pss_http", "loaded_rss_http", "reached_http", "perconn_http"],
     ["idle_rss_http", "perconn_http"]),
    ("Binary size",
     "sluice is one static binary; the peers are dynamically linked, so their size with the "
     "shared libraries they load (ldd) is shown too. Lower is better.",
     ["size_bin", "size_libs"], ["size_bin", "size_libs"]),
    ("Cold start",
     "Time from exec to the first accepted TCP connect on the proxy's port (polled every "
     "1 ms), per config. Lower is better.",
     ["coldstart_ms"], ["coldstart_ms"]),
]


def role(name):
    if name == "direct":
        return "direct"
    if name == "sluice":
        return "sluice"
    if name.startswith("sluice ("):
        return "info"
    return "peer"


def load(path):
    samples, na, notes = OrderedDict(), {}, {}
    order = OrderedDict()
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            metric, who, kind, value = parts
            order.setdefault(metric, OrderedDict())[who] = True
            if kind == "sample":
                samples.setdefault((metric, who), []).append(float(value))
            elif kind == "na":
                na[(metric, who)] = value
            elif kind == "note":
                notes.setdefault((metric, who), []).append(value)
    return samples, na, notes, order


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(r):
    return "—" if r is None else f"{r:.2f}×"


class Report:
    def __init__(self, samples, na, notes, order):
        self.samples, self.na, self.notes, self.order = samples, na, notes, order

    def median(self, metric, who):
        s = self.samples.get((metric, who))
        return statistics.median(s) if s else None

    def contenders(self, metrics):
        seen = OrderedDict()
        for m in metrics:
            for who in self.order.get(m, {}):
                seen[who] = True
        rank = {"direct": 0, "sluice": 1, "peer": 2, "info": 3}
        return sorted(seen, key=lambda n: rank[role(n)])  # stable: run order within a role

    def best_peer(self, metric, names):
        higher = METRICS[metric][2]
        peers = [(self.median(metric, n), n) for n in names if role(n) == "peer"]
        peers = [(v, n) for v, n in peers if v is not None]
        if not peers:
            return None, None
        v, n = (max if higher else min)(peers)
        return v, n

    def cell(self, metric, who):
        v = self.median(metric, who)
        if v is not None:
            return METRICS[metric][1](v)
        if (metric, who) in self.na:
            return f"n/a ({self.na[(metric, who)]})"
        return "—"

    def efficiency(self, metric, who):
        rate, pct = self.median(metric, who), self.median(metric + "_cpu", who)
        if rate is None or pct is None or rate == 0:
            return None
        return EFFICIENCY[metric][1](rate, pct)

    def table(self, title, intro, metrics, ratio_metrics):
        names = self.contenders(metrics)
        if not names:
            return []
        eff = metrics[0] if metrics[0] in EFFICIENCY else None
        if eff:
            intro += " " + CPU_NOTE
        out = [f"## {title}", "", intro, ""]
        if eff:
            out += self.interference(eff, names)
        head = ["contender"] + [METRICS[m][0] for m in metrics]
        if eff:
            head += [METRICS[eff + "_cpu"][0], EFFICIENCY[eff][0]]
        for m in ratio_metrics:
            label = METRICS[m][0] if len(ratio_metrics) > 1 else ""
            label = label.split(" (")[0]
            suffix = f" ({label})" if label else ""
            if any(role(n) == "direct" for n in names):
                head.append("× direct" + suffix)
            head.append("× best peer" + suffix)
        head.append("runs" if len(metrics) == 1 else "notes")
        if len(metrics) == 1:
            head.append("notes")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        refs = {m: (self.median(m, "direct"), self.best_peer(m, names)) for m in ratio_metrics}
        for who in names:
            label = f"**{who}**" if role(who) == "sluice" else who
            row = [label]
            first_na = None
            for m in metrics:
                c = self.cell(m, who)
                if c.startswith("n/a ("):
                    # Say why once per row.
                    c = c if first_na is None else "n/a"
                    first_na = first_na or c
                row.append(c)
            if eff:
                pct = self.median(eff + "_cpu", who)
                e = self.efficiency(eff, who)
                row.append("—" if pct is None else f_pct(pct))
                row.append("—" if e is None else EFFICIENCY[eff][2](e))
            for m in ratio_metrics:
                v = self.median(m, who)
                direct, (best, _) = refs[m]
                if any(role(n) == "direct" for n in names):
                    row.append(fmt_ratio(ratio(v, direct)))
                row.append(fmt_ratio(ratio(v, best)))
            if len(metrics) == 1:
                s = self.samples.get((metrics[0], who), [])
                row.append(" / ".join(METRICS[metrics[0]][1](x) for x in s) or "—")
            row.append("; ".join(n for m in metrics for n in self.notes.get((m, who), [])))
            out.append("| " + " | ".join(row) + " |")
        out.append("")
        for m in ratio_metrics:
            direct, (best, best_name) = refs[m]
            v = self.median(m, "sluice")
            what = METRICS[m][0]
            if v is None:
                why = self.na.get((m, "sluice"))
                out.append(f"- sluice, {what}: n/a" + (f" ({why})" if why else "") + ".")
                continue
            parts = []
            if direct is not None:
                parts.append(f"{fmt_ratio(ratio(v, direct))} direct")
            if best is not None:
                parts.append(f"{fmt_ratio(ratio(v, best))} the best peer ({best_name})")
            out.append(f"- sluice, {what}: " + ", ".join(parts) + ".")
        if eff and self.efficiency(eff, "sluice") is not None:
            mine = self.efficiency(eff, "sluice")
            peers = [(self.efficiency(eff, n), n) for n in names if role(n) == "peer"]
            peers = [(v, n) for v, n in peers if v is not None]
            line = f"- sluice, {EFFICIENCY[eff][0]}: {EFFICIENCY[eff][2](mine)}"
            if peers:
                v, n = min(peers)
                line += f" vs {EFFICIENCY[eff][2](v)} for the most frugal peer ({n}): {mine / v:.2f}×"
            out.append(line + " (lower is better).")
        out.append("")
        return out

    def interference(self, metric, names):
        """A line on how much CPU other processes (and the hypervisor: steal) took during
        this table's runs: the machine is shared, so say when figures are disturbed."""
        foreign = [x for n in names for x in self.samples.get((metric + "_foreign", n), [])]
        steal = [x for n in names for x in self.samples.get((metric + "_steal", n), [])]
        if not foreign:
            return []
        line = (f"Interference during these runs: other processes used a median of "
                f"{statistics.median(foreign):.0f}% of a core (max {max(foreign):.0f}%)")
        if steal and max(steal) > 0:
            line += f"; steal time median {statistics.median(steal):.0f}% (max {max(steal):.0f}%)"
        line += "."
        if max(foreign) >= 25:
            line += (" **Runs with ≥ 25% are disturbed by other work on the machine; treat "
                     "their figures with care.**")
        return [line, ""]

    def targets(self):
        rows = []

        def at_least(name, got, need, unit="×"):
            if got is None:
                return None
            if got >= need:
                return f"met ({got:.2f}{unit})"
            return f"missed: {got:.2f}{unit}, {100 * (need - got) / need:.1f}% short of {need:g}{unit}"

        def na_reason(metric):
            why = self.na.get((metric, "sluice"))
            return f"n/a ({why})" if why else "n/a (not measured)"

        # L4 throughput
        s = self.median("l4_tput", "sluice")
        d = self.median("l4_tput", "direct")
        r = ratio(s, d)
        rows.append(("L4 throughput ≥ 0.95× direct",
                     at_least("", r, 0.95) or na_reason("l4_tput")))
        for peer in ("haproxy (mode tcp)", "nginx stream"):
            p = self.median("l4_tput", peer)
            r = ratio(s, p)
            if r is None:
                res = "n/a (not measured)"
            elif r > 1:
                res = f"met ({r:.2f}× {peer})"
            else:
                res = f"missed: {r:.2f}× {peer}, {100 * (1 - r):.1f}% behind"
            rows.append((f"L4 throughput ahead of {peer}", res))
        # Connection rate
        r = ratio(self.median("l4_connrate", "sluice"),
                  self.median("l4_connrate", "haproxy (mode tcp)"))
        rows.append(("L4 connection rate ≥ haproxy",
                     at_least("", r, 1.0) or na_reason("l4_connrate")))
        # HTTP
        r = ratio(self.median("http1", "sluice"), self.median("http1", "nginx"))
        rows.append(("HTTP/1.1 ≥ 1.3× nginx", at_least("", r, 1.3) or na_reason("http1")))
        r = ratio(self.median("https1", "sluice"), self.median("https1", "nginx"))
        rows.append(("HTTPS ≥ nginx", at_least("", r, 1.0) or na_reason("https1")))
        # Memory
        v = self.median("idle_rss_l4", "sluice")
        if v is None:
            rows.append(("idle RSS ≤ 3 MB", na_reason("idle_rss_l4")))
        else:
            b = v * 1024
            res = (f"met ({b / 1e6:.2f} MB)" if b <= 3e6 else
                   f"missed: {b / 1e6:.2f} MB, {100 * (b - 3e6) / 3e6:.1f}% over")
            rows.append(("idle RSS ≤ 3 MB (3,000,000 bytes)", res))
        v = self.median("perconn_l4", "sluice")
        if v is None:
            rows.append(("≤ 10 KB per idle L4 connection", na_reason("perconn_l4")))
        else:
            res = (f"met ({v:,.0f} bytes)" if v <= 10000 else
                   f"missed: {v:,.0f} bytes, {100 * (v - 10000) / 10000:.1f}% over")
            rows.append(("≤ 10 KB (10,000 bytes) per idle L4 connection", res))
        out = ["## Targets", "", "| target | result |", "|---|---|"]
        out += [f"| {t} | {r} |" for t, r in rows]
        out.append("")
        return out


def main(argv):
    samples, na, notes, order = load(argv[1])
    meta = OrderedDict()
    with open(argv[2]) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    rep = Report(samples, na, notes, order)
    out = ["# sluice benchmark results", ""]
    out.append(f"Produced by `make bench` (bench/run.sh) on {meta.get('date', '?')}"
               f"{' in quick mode (BENCH_QUICK=1): indicative only' if meta.get('quick') == '1' else ''}."
               " Each figure is the median of the runs listed next to it.")
    out.append("")
    out.append("| | |")
    out.append("|---|---|")
    for k, v in meta.items():
        if k in ("date", "quick"):
            continue
        out.append(f"| {k} | {v} |")
    out.append("")
    out += [
        "## Reading these figures",
        "",
        "- **direct** is the ceiling of the client/backend pair on CPU 0. Through any proxy the "
        "bytes cross loopback twice, and much of the extra kernel work lands on CPU 0 with the "
        "client and the backend, so every proxy sits far below direct in L4 throughput: a "
        "property of this 2-core placement more than of any one proxy. Compare the proxies "
        "with each other, and by their CPU time per unit of work.",
        "- Runs are interleaved (round 1: every contender, round 2: every contender, ...); each "
        "table says how much CPU other processes on this shared machine took during its runs.",
        "- The idle L4 clients send one byte each, so every relay has connected upstream and "
        "moved data once (sluice creates its splice pipe on first data).",
        "",
    ]
    out += rep.targets()
    for t in TABLES:
        out += rep.table(*t)
    # What the profiles of the missed targets show: written by hand (bench/PROFILE.md), kept
    # with the figures it explains.
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "PROFILE.md")
    if os.path.exists(notes):
        with open(notes) as f:
            out += ["", f.read().rstrip()]
    sys.stdout.write("\n".join(out).rstrip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
