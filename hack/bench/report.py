#!/usr/bin/python3
"""Markdown tables from bench.py's JSON, and the RESULTS.md record.

  report.py --json last.json --command "make bench" --wall SECONDS > last.md
  report.py --record hack/bench/RESULTS.md --run last.md    # newest run first
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import fmt_b, fmt_n, fmt_s  # noqa: E402

MARK = "<!-- bench runs below, newest first (hack/bench/report.py --record) -->"

# Targets of the issue: reported against, never asserted.
T_NFT_FULL_10K = 20.0
T_LEGACY_RATIO = 1.1
T_RENDER_10K = 0.100
T_RSS_10K = 30 << 20
T_FEW_KB = 16 << 10  # "one changed service => a few KB": its chains and at most one 64-rule tree leaf


def g(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(str(p)) if isinstance(d, dict) else None
    return d


def sizes(d):
    return sorted((int(k) for k in (d or {})), key=int)


def ratio(a, b):
    return a / b if a is not None and b else None


def fx(x, digits=2):
    return "–" if x is None else "%.*f×" % (digits, x)


def part(p, kind):
    """'latency (sync: iptables + daemon), bytes' of a partial sync kind."""
    x = g(p, kind)
    if not x:
        return "–"
    return "%s (sync %s = iptables %s + daemon %s), %s" % (
        fmt_s(x["latency"]), fmt_s(x["elapsed"]), fmt_s(x["ipt"]), fmt_s(x["own"]), fmt_b(x["bytes"]))


def size_table(r, n):
    out = []
    rd = g(r, "render", n)
    fl = g(r, "full", n) or {}
    dn, dl = fl.get("daemon-nft"), fl.get("daemon-legacy")
    bn, bl = fl.get("bare-nft"), fl.get("bare-legacy")
    head = "### %s services × 10 endpoints" % fmt_n(n)
    lay = fl.get("layout") or g(rd, "layout")
    if rd:
        head += " — %s service ports, %s rules in %s chains, %s of iptables-restore input" % (
            fmt_n(g(dn, "ports") or g(dl, "ports")), fmt_n(rd["rules"]), fmt_n(rd["chains"]),
            fmt_b(rd["bytes"]))
    if lay:
        head += "; **%s** dispatch layout (the daemon's default flags)" % lay
    out += [head, "", "| | nft | legacy |", "|---|---|---|"]
    if rd:
        v = "%s (%s rules/s), max RSS %s" % (fmt_s(rd["wall"]), fmt_n(rd["rules_per_s"]), fmt_b(rd["rss"]))
        out.append("| render: `--dump-rules --from-file`, whole process (median of %d) | %s | same |"
                   % (len(rd["walls"]), v))
    if fl:
        def bare(b, skip):
            if not b:
                return skip
            return "%s (max RSS %s)" % (fmt_s(b["elapsed"]), fmt_b(b["rss"]))
        out.append("| bare `iptables-restore` of that payload, one transaction (upstream) | %s | %s |" % (
            bare(bn, "skipped (minutes above 2k services)"), bare(bl, "not run")))

        def full(d, b):
            if not d:
                return "not run"
            s = "**%s**" % fmt_s(d["elapsed"])
            if b:
                s += " = **%s** bare" % fx(ratio(d["elapsed"], b["elapsed"]))
            s += "; iptables %s (%d restore%s: blocks %s, last %s; saves %s), daemon %s" % (
                fmt_s(d["ipt"]), d["n_restore"], "s" if d["n_restore"] != 1 else "",
                fmt_s(d["blocks"]) if d["n_restore"] > 1 else "–",
                fmt_s(d["final_txn"]), fmt_s(d["save"]), fmt_s(d["own"]))
            return s
        out.append("| daemon: first full sync into an empty namespace | %s | %s |" % (full(dn, bn), full(dl, bl)))

        def start(d):
            if not d:
                return "–"
            return "%s (lists in %s)" % (fmt_s(d["start_to_sync"]), fmt_s(d["start_to_ready"]))
        out.append("| daemon: start → first full sync done, listing from the test API server | %s | %s |"
                   % (start(dn), start(dl)))

        def rss(d):
            if not d:
                return "–"
            return "%s after the first sync, %s after the partial syncs (peak %s)" % (
                fmt_b(d["rss"]), fmt_b(d.get("rss_after_partial")), fmt_b(d.get("hwm_after_partial") or d["hwm"]))
        out.append("| daemon RSS, whole cluster loaded | %s | %s |" % (rss(dn), rss(dl)))
        for kind, label in (("endpoint", "partial sync, one endpoint changed: event → in the kernel"),
                            ("service", "partial sync, one new service: event → in the kernel"),
                            ("noop", "partial sync with nothing to write (the daemon's fixed cost)")):
            out.append("| %s | %s | %s |" % (label, part(g(dn, "partial"), kind), part(g(dl, "partial"), kind)))

        def floor(d):
            f = g(d, "floor")
            if not f:
                return "–"
            return "%s / %s" % (fmt_s(f["empty"]), fmt_s(f["new_chain"]))
        out.append("| iptables' floor on this table: bare restore of an empty COMMIT / of one new chain "
                   "| %s | %s |" % (floor(dn), floor(dl)))
        out.append("| runs (full syncs; partial syncs per kind) | %s; %s | %s; %s |" % (
            fl.get("runs") if dn else "–", g(dn, "partial", "endpoint", "n") or "–",
            fl.get("runs") if dl else "–", g(dl, "partial", "endpoint", "n") or "–"))
    out.append("")
    return out


def scaling(r):
    out = ["### Partial syncs against cluster size", "",
           "Event → in the kernel (the daemon's `iptables` and own time in brackets), and the "
           "restore payload.", "",
           "| services | layout | nft: one endpoint changed | nft: one new service | legacy: one endpoint changed "
           "| legacy: one new service |", "|---|---|---|---|---|---|"]
    for n in sizes(r.get("full")):
        row = [fmt_n(n), g(r, "full", n, "layout") or "–"]
        for be in ("nft", "legacy"):
            for kind in ("endpoint", "service"):
                x = g(r, "full", n, "daemon-" + be, "partial", kind)
                row.append("–" if not x else "%s (%s + %s), %s" % (
                    fmt_s(x["latency"]), fmt_s(x["ipt"]), fmt_s(x["own"]), fmt_b(x["bytes"])))
        out.append("| " + " | ".join(row) + " |")
    out += ["", "### First full sync against cluster size", "",
            "Layout: the dispatch layout the daemon chose with its default flags (`auto`); the bare "
            "restores ran the `--dump-rules` payload rendered with the same flags.", "",
            "| services | layout | render | nft: daemon | legacy: daemon | legacy: bare, 1 transaction | legacy ratio "
            "| nft: bare, 1 transaction | start → synced (nft) | RSS (nft) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for n in sizes(r.get("full")):
        fl = g(r, "full", n)
        dn, dl, bl, bn = (fl.get(k) for k in ("daemon-nft", "daemon-legacy", "bare-legacy", "bare-nft"))
        out.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            fmt_n(n), fl.get("layout") or "–", fmt_s(g(r, "render", n, "wall")), fmt_s(g(dn, "elapsed")),
            fmt_s(g(dl, "elapsed")),
            fmt_s(g(bl, "elapsed")), fx(ratio(g(dl, "elapsed"), g(bl, "elapsed"))),
            fmt_s(g(bn, "elapsed")) if bn else "skipped", fmt_s(g(dn, "start_to_sync")), fmt_b(g(dn, "rss"))))
    out.append("")
    return out


def targets(r):
    out = ["### Against the targets", "", "| target | measured | |", "|---|---|---|"]

    def row(what, val, ok, how):
        out.append("| %s | %s | %s |" % (what, val, "met" if ok else ("**missed** " + how) if ok is not None
                                        else "not measured" + (" (full run only)" if r["mode"] == "quick" else "")))
    d = g(r, "full", 10000, "daemon-nft", "elapsed")
    row("first full sync, 10k × 10, nft: < 20 s", fmt_s(d), None if d is None else d < T_NFT_FULL_10K,
        "by %s (%.1f×)" % (fmt_s(d - T_NFT_FULL_10K), d / T_NFT_FULL_10K) if d else "")
    dl, bl = g(r, "full", 10000, "daemon-legacy", "elapsed"), g(r, "full", 10000, "bare-legacy", "elapsed")
    q = ratio(dl, bl)
    row("first full sync, 10k × 10, legacy: ≤ 1.1 × bare iptables-legacy-restore",
        "%s vs %s = %s" % (fmt_s(dl), fmt_s(bl), fx(q)) if q else "–",
        None if q is None else q <= T_LEGACY_RATIO, "by %.2f×" % (q - T_LEGACY_RATIO) if q else "")
    w = g(r, "render", 10000, "wall")
    row("render of 10k × 10 under 100 ms (whole `--dump-rules` process, JSON decoding included)",
        fmt_s(w), None if w is None else w < T_RENDER_10K, "(%.0f×)" % (w / T_RENDER_10K) if w else "")
    rs = g(r, "full", 10000, "daemon-nft", "rss_after_partial") or g(r, "full", 10000, "daemon-nft", "rss")
    row("daemon RSS at 10k services / 100k endpoints under 30 MB (nft)", fmt_b(rs),
        None if rs is None else rs < T_RSS_10K, "(%.1f×)" % (rs / T_RSS_10K) if rs else "")
    ns = [n for n in sizes(r.get("full")) if n >= 1000 and g(r, "full", n, "daemon-nft", "partial")]
    if len(ns) >= 2:
        by = [g(r, "full", n, "daemon-nft", "partial", "endpoint", "bytes") for n in ns]
        lat = [g(r, "full", n, "daemon-nft", "partial", "endpoint", "latency") for n in ns]
        own = [g(r, "full", n, "daemon-nft", "partial", "endpoint", "own") for n in ns]
        ipt = [g(r, "full", n, "daemon-nft", "partial", "endpoint", "ipt") for n in ns]
        sv = [g(r, "full", n, "daemon-nft", "partial", "service", "bytes") for n in ns]
        flat_b = max(by + sv) <= T_FEW_KB
        row("partial sync payload flat from %s to %s services: one changed service ⇒ a few KB (≤ 16 KB: its chains and a tree leaf; nft, "
            "one endpoint changed / one new service)" % (fmt_n(ns[0]), fmt_n(ns[-1])),
            " → ".join(fmt_b(x) for x in by) + " / " + " → ".join(fmt_b(x) for x in sv), flat_b,
            "(%s)" % fmt_b(max(by + sv)))
        flat_l = max(lat) <= 2 * min(lat) + 0.005
        row("partial sync latency flat (one endpoint changed, nft): a few ms plus iptables' floor",
            " → ".join(fmt_s(x) for x in lat) + " (iptables %s; daemon %s)" % (
                " → ".join(fmt_s(x) for x in ipt), " → ".join(fmt_s(x) for x in own)),
            flat_l, "(iptables-nft's own cost grows with the table; the daemon's part: %s)"
            % " → ".join(fmt_s(x) for x in own))
    gr = g(r, "dataplane", "groups") or {}
    for be in ("nft", "legacy"):
        # at the biggest size measured on that backend (20k on nft; legacy stops at 10k in
        # full runs: loading a 20k table takes iptables-legacy minutes)
        big = max((v["services"] for v in gr.values() if v["backend"] == be), default=20000)
        e = g(r, "dataplane", "groups", "%s-%d-tree" % (be, big))
        rs = [(t, g(e, t, "ratio")) for t in ("plain", "first", "last")]
        rs = [(t, x) for t, x in rs if x is not None]
        worst = min(rs, key=lambda tx: tx[1]) if rs else None
        lin = g(r, "dataplane", "groups", "%s-%d-linear" % (be, big))
        noext = g(e, "nofilter", "plain", "ratio")
        small = sorted((v for v in gr.values() if v["backend"] == be and v["layout"] == "linear"),
                       key=lambda v: v["services"])
        floor = ("; a service behind a 1-rule walk (linear, first service, %s services): %s, p50 %.0f µs vs "
                 "%.0f µs for the baseline" % (fmt_n(small[0]["services"]), fx(g(small[0], "first", "ratio")),
                                                g(small[0], "first", "p50"),
                                                g(r, "dataplane", "baseline", be, "p50") or 0)
                 if small and g(small[0], "first", "p50") else "")
        row("tree layout within 10 %% of the no-service baseline at %s services, %s (new TCP connections/s: "
            "plain, first, last service)" % ("%dk" % (big // 1000) if big >= 1000 else big, be),
            ", ".join("%s %s (p50 %.0f µs)" % (t, fx(x), g(e, t, "p50")) for t, x in rs) + floor + (
                " (linear: %s)" % ", ".join("%s %s" % (t, fx(g(lin, t, "ratio"))) for t, _ in rs) if lin else "") +
            ("; with the filter dispatch chains emptied (diagnostic): plain %s, first %s, last %s"
             % (fx(noext), fx(g(e, "nofilter", "first", "ratio")), fx(g(e, "nofilter", "last", "ratio")))
             if noext else "")
            if rs else "–", None if worst is None else worst[1] >= 0.9,
            "by %.1f points (%s: %.3f×)" % (100 * (0.9 - worst[1]), worst[0], worst[1]) if worst else "")
    c = r.get("churn")
    if c:
        grow = c["rss_end"] - c["rss_warm"] if c["rss_end"] and c["rss_warm"] else None
        half = churn_half(c)
        row("no RSS growth over the churn run", "%s → %s (%+.1f MB; %+.1f MB over the second half)" % (
            fmt_b(c["rss_warm"]), fmt_b(c["rss_end"]), grow / 2**20 if grow is not None else 0,
            (c["rss_end"] - half) / 2**20 if half and c["rss_end"] else 0),
            None if grow is None else grow < 2 << 20, "by %.1f MB" % (grow / 2**20) if grow else "")
    out.append("")
    return out


def churn_half(c):
    """RSS at half time of the churn run (the sample closest to it)."""
    xs = c.get("rss_samples") or []
    if not xs:
        return None
    return min(xs, key=lambda tx: abs(tx[0] - c["seconds"] / 2))[1]


def churn(r):
    c = r.get("churn")
    if not c:
        return []
    return ["### Churn: endpoint changes at %d/s for %.0f s, %s services, nft" % (c["rate"], c["seconds"], fmt_n(c["services"])), "",
            "| changes sent | syncs | syncs/s | full syncs | sync time (median / max) | bytes/sync (median) "
            "| CPU: daemon / iptables children | RSS: before → after 10 s → half time → end (peak) |",
            "|---|---|---|---|---|---|---|---|",
            "| %s%s | %d | %.2f | %d | %s / %s | %s | %.1f s (%.0f%% of a core) / %.1f s | %s → %s → %s → %s (%s) |" % (
                fmt_n(c["sent"]), " (%d errors)" % c["errors"] if c["errors"] else "", c["syncs"],
                c["syncs_per_s"], c["full_syncs"], fmt_s(c["sync_elapsed_median"]),
                fmt_s(c["sync_elapsed_max"]), fmt_b(c["bytes_median"]), c["cpu"],
                100 * c["cpu"] / c["seconds"], c["child_cpu"], fmt_b(c["rss_start"]), fmt_b(c["rss_warm"]),
                fmt_b(churn_half(c)), fmt_b(c["rss_end"]), fmt_b(c["hwm"])), ""]


def runs_text(dp):
    over = dp.get("runs_over") or {}
    return str(dp["runs"]) + "".join(" (%s from %s services)" % (v, fmt_n(int(k)))
                                     for k, v in sorted(over.items(), key=lambda kv: int(kv[0])))


def rules(n):
    return "–" if n is None else "%s rule%s" % (fmt_n(n), "" if n == 1 else "s")


def dataplane(r):
    dp = r.get("dataplane")
    if not dp or "groups" not in dp:
        return []
    gr, base = dp["groups"], dp["baseline"]
    auto = r.get("auto_ports") or 500  # rules/model.h RULES_DISPATCH_AUTO_PORTS
    out = ["### Dataplane: new TCP connections per second through the node", "",
           "Client namespace → node namespace (the rules; no daemon running) → server namespace; one "
           "connect/close at a time (`hack/bench/connrate.c`, RST close); medians of %s runs of %g s, "
           "interleaved with as many runs against the baseline. The baseline: the same backend's rules "
           "for a cluster without services (a daemon's full sync of an empty cluster). Each cell: new "
           "connections/s (× the baseline runs interleaved with it), connect() p50, and the rules of nat "
           "`KUBE-SERVICES` (and `KUBE-CIP-*`) the connection's first packet walks, counted on the "
           "kernel's rules. *plain*: straight to a pod IP, no service; *first*/*last*: the first/last "
           "ClusterIP rule of the linear `KUBE-SERVICES` (TCP, ready endpoints), the same two services "
           "in the tree layout. Each size's rules: a full-phase daemon's (default flags, *auto* "
           "layout; a run without partial syncs, or its partial syncs reverted) or, where there was none, "
           "the linear `--dump-rules` payload restored as the daemon writes it; the other layout then swapped in place (only the dispatch chains differ: nat "
           "`KUBE-SERVICES` and its `KUBE-CIP` tree, filter `KUBE-SERVICES`, `KUBE-EXTERNAL-SERVICES`, "
           "`KUBE-PROXY-FIREWALL` and theirs; checked in the kernel after every swap). "
           "`--service-cluster-ip-range` not given (the tree's root is derived from the addresses)." % (runs_text(dp), dp["secs"]), ""]

    def cell(x):
        if not x or x.get("rate") is None:
            return "–"
        return "%s/s (%s), %.0f µs, %s" % (fmt_n(x["rate"]), fx(x.get("ratio")), x["p50"], rules(x["walked"]))
    for be in ("nft", "legacy"):
        keys = sorted((k for k in gr if gr[k]["backend"] == be),
                      key=lambda k: (gr[k]["services"], gr[k]["layout"]))
        if not keys:
            continue
        b = base.get(be, {})
        out += ["#### %s" % be, "",
                "| services (ports) | layout | plain | first service | last service | rules from |",
                "|---|---|---|---|---|---|",
                "| none (baseline) | – | %s/s, %.0f µs, %s | | | daemon |" % (
                    fmt_n(b.get("rate")), b.get("p50") or 0, rules(b.get("walked")))]
        for k in keys:
            e = gr[k]
            how = e["loaded"] if not e.get("switch_seconds") else "swapped in (%s)" % fmt_s(e["switch_seconds"])
            if e["loaded"] == "restored" and not e.get("switch_seconds") and e.get("load_seconds"):
                how = "restored (%s)" % fmt_s(e["load_seconds"])
            out.append("| %s (%s) | %s | %s | %s | %s | %s |" % (
                fmt_n(e["services"]), fmt_n(e["ports"]), e["layout"], cell(e.get("plain")),
                cell(e.get("first")), cell(e.get("last")), how))
        out.append("")
    # where tree starts to beat linear (nft)
    ns = sorted({gr[k]["services"] for k in gr if gr[k]["backend"] == "nft"})
    rows = []
    for n in ns:
        lin, tree = g(gr, "nft-%d-linear" % n), g(gr, "nft-%d-tree" % n)
        if not lin or not tree:
            continue

        def d(t):
            a, b = g(lin, t, "ratio"), g(tree, t, "ratio")
            pa, pb = g(lin, t, "p50"), g(tree, t, "p50")
            if a is None or b is None:
                return "–"
            return "%s / %s (%+.0f %%); p50 %.0f / %.0f µs" % (fx(a), fx(b), 100 * (b - a) / a, pa, pb)
        rows.append("| %s | %s | %s | %s | %s | %s |" % (
            fmt_n(n), fmt_n(lin["ports"]), d("plain"), d("first"), d("last"),
            "tree" if lin["ports"] > auto else "linear"))
    if rows:
        out += ["#### Where tree starts to beat linear (nft)", "",
                "Connections/s as × baseline, linear / tree (tree's difference to linear), and the "
                "connect() p50 of each (steadier than the rate: a median over thousands of connections). "
                "`auto` switches to tree above %d service ports of a family (`RULES_DISPATCH_AUTO_PORTS`)."
                % auto, "",
                "| services | service ports | plain: linear / tree | first: linear / tree | last: linear / tree "
                "| auto picks |", "|---|---|---|---|---|---|"] + rows + [""]
    ne = [(k, gr[k]) for k in sorted(gr) if gr[k].get("noext")]
    if ne:
        out += ["Diagnostic at each backend's biggest size, tree layout: what the filter table's dispatch chains "
                "still cost. (a) filter `KUBE-EXTERNAL-SERVICES` (and its tree) emptied: every new "
                "connection the node forwards that is not masqueraded service traffic (which `KUBE-FORWARD` "
                "accepts first) walks it; it holds upstream's DROP rules for services without (local) "
                "endpoints, the NodePort ones with `-m addrtype --dst-type LOCAL` (a route lookup each). "
                "(b) filter `KUBE-SERVICES` (no-endpoint services) and `KUBE-PROXY-FIREWALL` (LB source "
                "ranges; walked by every new connection) emptied too: what is left is the nat table's "
                "own cost.", "",
                "| rules | filter chains: rules in each and its tree | plain, as written | (a) plain | (b) plain "
                "| (b) first | (b) last |",
                "|---|---|---|---|---|---|---|"]
        for k, e in ne:
            x, y = e["noext"], e.get("nofilter") or {}
            rl = y.get("rules") or {}
            out.append("| %s, %s services, tree | %s | %s | %s | %s | %s | %s |" % (
                e["backend"], fmt_n(e["services"]),
                "EXTERNAL-SERVICES %s (%s addrtype LOCAL), SERVICES %s, PROXY-FIREWALL %s" % (
                    fmt_n(x["rules"]), fmt_n(x["addrtype"]), fmt_n(rl.get("KUBE-SERVICES")),
                    fmt_n(rl.get("KUBE-PROXY-FIREWALL"))),
                fx(g(e, "plain", "ratio")), fx(x["ratio"]), fx(g(y, "plain", "ratio")),
                fx(g(y, "first", "ratio")), fx(g(y, "last", "ratio"))))
        out += ["", "(× the baseline runs interleaved with each.)", ""]
    bad = [be for be, ok in (dp.get("checks") or {}).items() if not ok]
    chk = ", ".join(be for be, ok in (dp.get("checks") or {}).items() if ok)
    if chk:
        out += ["Restored payloads checked: at %d services the restored `--dump-rules` payload plus the "
                "jump rules equals, rule for rule, what the daemon wrote (%s)." % (100, chk), ""]
    if bad:
        out += ["**The restored payload differs from the daemon's rules** (%s): see the notes." % ", ".join(bad), ""]
    return out


def txn(r):
    t = r.get("txn")
    if not t:
        return []
    out = ["### nft transaction size: bare `iptables-nft-restore` of the %s-service payload (%s service "
           "ports, %s layout) split as the daemon splits a full sync" % (
               fmt_n(t["services"]), fmt_n(t["ports"]), t.get("layout", "?")), "",
           "| service ports per transaction | transactions | total | vs 100 | first block | last full block "
           "| `KUBE-CIP` chains (transactions) | last transaction (filter + dispatch) |",
           "|---|---|---|---|---|---|---|---|"]
    ref = g(t, "sizes", 100, "total")
    for k in sizes(t["sizes"]):
        x = g(t, "sizes", k)
        out.append("| %d | %d | %s | %s | %s | %s | %s | %s |" % (
            k, x["n"], fmt_s(x["total"]), fx(ratio(x["total"], ref)), fmt_s(x["first"]),
            fmt_s(x["last_own"]), "%s (%d)" % (fmt_s(x["tree"]), x["n_tree"]) if x.get("n_tree") else "–",
            fmt_s(x["final"])))
    out.append("")
    return out


def render(r, command, wall):
    m = r["machine"]
    binary = m["binary"] if m["git"] in m["binary"] else "%s (git %s)" % (m["binary"], m["git"])
    out = ["## %s — `%s` (%s mode)" % (r["started"], command, r["mode"]), "",
           "%s, %s cores, %s GB; kernel %s; %s; %s. Wall time %s." % (
               m["cpu"], m["cores"], m["mem_gb"], m["kernel"], m["iptables"], binary, fmt_s(wall)),
           "Load average (1/5/15 min) at the start %s, at the end %s: anything else running on the "
           "machine shows up in the figures." % (r.get("load_start", "?"), r.get("load_end", "?")), ""]
    out += targets(r)
    for n in sizes(r.get("full") or r.get("render")):
        out += size_table(r, n)
    if r.get("full"):
        out += scaling(r)
    out += churn(r) + dataplane(r) + txn(r)
    if r["notes"]:
        out += ["Notes:", ""] + ["- " + n for n in r["notes"]] + [""]
    if r["bugs"]:
        out += ["Possible daemon bugs seen during the run:", ""] + ["- " + b for b in r["bugs"]] + [""]
    return "\n".join(out) + "\n"


HEADER = """# Benchmark results

`make bench` (hack/bench.sh) writes its tables here after every full run, newest first,
so later runs can be compared with earlier ones. Every figure is a median over the runs
given in its table; everything that touches the kernel ran in throwaway network
namespaces. Clusters come from `hack/bench/gen.py` (seed 1: N services × 10 endpoints,
ClusterIP/NodePort/LoadBalancer with source ranges, ClientIP affinity, eTP/iTP Local,
1–3 ports, some UDP; ClusterIPs spread over 10.96.0.0/16).

How to read the columns:
- *event → in the kernel*: from just before the test API server was asked to change the
  object to the daemon's `SyncProxyRules complete` log line (written after the last
  iptables-restore exited). It includes the API server's own handling of the write.
- *iptables* / *daemon*: the sync's time spent in iptables tools (timed by
  `hack/bench/iptwrap.c`, a shim on the daemon's PATH) and the rest.
- *bare*: `iptables-restore` run by hand on the `--dump-rules` payload, in one transaction,
  as upstream kube-proxy does; the payload is rendered with the daemon's own flags, so it
  has the same dispatch layout (*layout*: what `--service-dispatch=auto`, the default,
  chose for that size).
- *dataplane*: new TCP connections per second through a node namespace holding the rules,
  as a ratio to the same backend's rules without services, in both layouts at each size.

""" + MARK + "\n"


def record(path, run_md):
    with open(run_md) as f:
        run = f.read().strip() + "\n"
    text = HEADER
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        if MARK in old:
            text = old.split(MARK)[0] + MARK + "\n"
            rest = old.split(MARK, 1)[1].lstrip("\n")
        else:
            rest = ""
    else:
        rest = ""
    with open(path + ".tmp", "w") as f:
        f.write(text + "\n" + run + ("\n" + rest if rest else ""))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--wall", type=float, default=0)
    ap.add_argument("--record")
    ap.add_argument("--run")
    a = ap.parse_args()
    if a.record:
        record(a.record, a.run)
        return
    with open(a.json) as f:
        r = json.load(f)
    sys.stdout.write(render(r, a.command, a.wall))


if __name__ == "__main__":
    main()
