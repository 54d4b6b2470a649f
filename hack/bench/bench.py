#!/usr/bin/python3
"""kube-iptables-proxy benchmarks: the driver behind `make bench` (hack/bench.sh).

Figures, never assertions: the exit status says only whether the benchmark ran.
Every kernel-side measurement runs in throwaway network namespaces (lib.py).

  bench.py --mode full|quick --fixtures DIR --out DIR [--phases render,full,...]

Phases (in this order; --phases picks a subset):
  render    --dump-rules --from-file: wall time, max RSS, rules/s
  full      first full sync into an empty namespace: bare iptables-restore of the
            --dump-rules payload in one transaction (what upstream does) vs the
            daemon (nft and legacy), listing N services from the test API server;
            then, in the last daemon of each backend, partial syncs (one endpoint
            changed, one new service) and the steady-state RSS
  churn     a sustained stream of endpoint changes: syncs/s, CPU, RSS over time
  dataplane new TCP connections/s from a client namespace through the daemon's
            namespace to a server namespace: first/last service, plain traffic
  txn       bare iptables-nft-restore of the payload split like the daemon splits
            it, for several services-per-transaction sizes
"""

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402
from lib import fmt_b, fmt_n, fmt_s, log, median  # noqa: E402

MODES = {
    # sizes: services (x 10 endpoints); *_runs: medians of this many; runs_over: fewer
    # runs from that size up; legacy_max: no legacy legs above (minutes per run there);
    # nft_single_max: no bare single-transaction nft run above; floor_legacy_max: the bare
    # "floor" restores (empty commit, one new chain) on legacy only up to there
    "full": dict(sizes=[100, 1000, 5000, 10000, 20000], render_runs=5, render_runs_over={10000: 3},
                 full_runs=3, runs_over={20000: 1}, legacy_max=10000, nft_single_max=2000,
                 bare_nft_runs_over={},
                 partial_reps=5, partial_reps_legacy_over={5000: 3, 10000: 2},
                 floor_legacy_max=5000, churn_size=10000, churn_secs=90, churn_rate=50,
                 dp_sizes=[100, 10000], dp_runs=5, dp_secs=0.5,
                 txn_size=5000, txn_sizes=[25, 50, 100, 200, 400], txn_runs=1),
    "quick": dict(sizes=[100, 1000], render_runs=3, render_runs_over={}, full_runs=3, runs_over={},
                  legacy_max=10000, nft_single_max=1000, bare_nft_runs_over={1000: 1},
                  partial_reps=2, partial_reps_legacy_over={}, floor_legacy_max=5000,
                  churn_size=1000, churn_secs=10, churn_rate=50, dp_sizes=[100, 1000], dp_runs=3,
                  dp_secs=0.3, txn_size=1000, txn_sizes=[50, 100, 200], txn_runs=1),
}
PHASES = ["render", "full", "churn", "dataplane", "txn"]


class Bench:
    def __init__(self, mode, fixtures, out, phases):
        self.mode = mode
        self.cfg = MODES[mode]
        self.fixtures = fixtures
        self.out = out
        self.phases = phases
        self.logdir = os.path.join(out, "logs")
        os.makedirs(self.logdir, exist_ok=True)
        self.res = {"mode": mode, "render": {}, "full": {}, "partial": {}, "daemon": {},
                    "churn": None, "dataplane": None, "txn": None, "notes": [], "bugs": []}
        self.dp_keep = {}  # (backend, n) -> node namespace with the daemon's rules
        self.shim = os.path.join(out, "shim")
        self._fix = {}

    # ---- inputs ---------------------------------------------------------------

    def fixture(self, n):
        return os.path.join(self.fixtures, "cluster-%d.json" % n)

    def dump(self, n):
        return os.path.join(self.fixtures, "dump-%d.rules" % n)

    def objects(self, n):
        """The fixture's Services and EndpointSlices by name, and its ClusterIPs."""
        if n not in self._fix:
            doc = lib.load_json(self.fixture(n))
            svcs, slices = {}, {}
            for o in doc["items"]:
                if o["kind"] == "Service":
                    svcs[o["metadata"]["name"]] = o
                elif o["kind"] == "EndpointSlice":
                    slices[o["metadata"]["labels"]["kubernetes.io/service-name"]] = o
            order = sorted(svcs)
            self._fix = {n: (svcs, slices, order)}  # one size at a time: they are big
        return self._fix[n]

    def changeable(self, n, pos):
        """(service name, endpoint index) from position pos on: a ready endpoint of an
        internalTrafficPolicy=Cluster service, so that changing its address changes rules
        (a not-ready endpoint's address is in no rule: its change writes nothing)."""
        svcs, slices, order = self.objects(n)
        for k in range(len(order)):
            name = order[(pos + k) % len(order)]
            if svcs[name]["spec"].get("internalTrafficPolicy") == "Local":
                continue
            eps = slices[name]["endpoints"]
            for i in range(1, len(eps)):
                if eps[i]["conditions"].get("ready"):
                    return name, i
        raise RuntimeError("no changeable endpoint")

    def note(self, s):
        if s not in self.res["notes"]:
            self.res["notes"].append(s)

    def bug(self, s):
        log("POSSIBLE BUG:", s)
        self.res["bugs"].append(s)

    def over(self, n, default, table):
        """default, or the value of the biggest threshold in table that n reaches."""
        v = default
        for lim in sorted(table, key=int):
            if n >= int(lim):
                v = table[lim]
        return v

    # ---- render -----------------------------------------------------------------

    def phase_render(self):
        for n in self.cfg["sizes"]:
            walls, rss = [], []
            rules = None
            for i in range(self.over(n, self.cfg["render_runs"], self.cfg["render_runs_over"])):
                out = self.dump(n) if i == 0 else os.devnull
                with open(out, "w") as f:
                    t = time.perf_counter()
                    p = subprocess.run(["/usr/bin/time", "-f", "%M", lib.BIN, "--dump-rules",
                                        "--from-file", self.fixture(n)] + lib.DUMP_FLAGS,
                                       stdout=f, stderr=subprocess.PIPE, text=True)
                    walls.append(time.perf_counter() - t)
                if p.returncode != 0:
                    raise RuntimeError("--dump-rules failed: " + p.stderr[-2000:])
                rss.append(int(p.stderr.strip().splitlines()[-1]) * 1024)
                if i == 0:
                    rules = chains = 0
                    size = os.path.getsize(out)
                    with open(out) as f:
                        for line in f:
                            if line.startswith("-A "):
                                rules += 1
                            elif line.startswith(":"):
                                chains += 1
            w = median(walls)
            self.res["render"][n] = dict(wall=w, walls=walls, rss=median(rss), rules=rules,
                                         chains=chains, bytes=size, rules_per_s=rules / w)
            log("render %6d: %s, %s rules (%s/s), max RSS %s" % (
                n, fmt_s(w), fmt_n(rules), fmt_n(rules / w), fmt_b(median(rss))))

    # ---- bare restores -------------------------------------------------------------

    def bare_restore(self, backend, payload_path):
        """One transaction of the whole payload into a fresh namespace: (seconds, max RSS)."""
        ns = lib.Netns("bare")
        try:
            with open(payload_path) as f:
                argv = ["/usr/bin/time", "-f", "%M"] + lib.RESTORE_ARGS[backend]

                def go():
                    t = time.perf_counter()
                    p = subprocess.run(argv, stdin=f, capture_output=True, text=True)
                    return time.perf_counter() - t, p
                secs, p = ns.call(go)
            if p.returncode != 0:
                raise RuntimeError("bare %s restore failed: %s" % (backend, p.stderr[-2000:]))
            return secs, int(p.stderr.strip().splitlines()[-1]) * 1024
        finally:
            ns.delete()

    # ---- the daemon's first full sync (+ partial syncs in the last run) --------------

    def start_daemon(self, n, backend, tag):
        ns = lib.Netns(tag)
        try:
            api = lib.ApiServer(ns, self.fixture(n), os.path.join(self.logdir, "%s-api.log" % ns.name))
            d = lib.Daemon(ns, api.url, backend, os.path.join(self.logdir, "%s.log" % ns.name),
                           shim=self.shim)
            return ns, api, d
        except BaseException:
            ns.delete()
            raise

    def daemon_first_sync(self, n, backend, partial, keep_for_dp):
        ns, api, d = self.start_daemon(n, backend, "d%s" % backend[0])
        keep = False
        try:
            timeout = 120 + n * 0.03
            ready, _ = d.wait_for(lambda l: l["msg"].startswith("Services and EndpointSlices are synced"),
                                  timeout=timeout)
            line, idx = d.wait_sync(timeout=timeout + n * 0.02, full=True)
            kv = line["kv"]
            time.sleep(1.0)
            st = d.rss()
            bd = d.breakdown(line)
            rt = bd.pop("restore_times")
            r = dict(start_to_ready=ready["ts"] - d.t_start, start_to_sync=line["ts"] - d.t_start,
                     ipt=bd["iptables"], own=bd["own"], save=bd["save"], n_restore=bd["n_restore"],
                     final_txn=rt[-1] if rt else None, blocks=sum(rt[:-1]),
                     block_first=rt[1] if len(rt) > 2 else None, block_last=rt[-2] if len(rt) > 2 else None,
                     elapsed=float(kv["elapsed"].rstrip("s")), bytes=int(kv["bytes"]),
                     ports=int(kv["servicePorts"]), nat_rules=int(kv["natRules"]),
                     filter_rules=int(kv["filterRules"]), rss=st.get("VmRSS"), hwm=st.get("VmHWM"),
                     log=d.logpath)
            for p in d.problems():
                self.bug("%s %d services: daemon logged %s %r" % (backend, n, p["sev"], p["line"][:300]))
            if partial:
                r["partial"] = self.partial_syncs(n, backend, ns, api, d)
                st = d.rss()
                r["rss_after_partial"], r["hwm_after_partial"] = st.get("VmRSS"), st.get("VmHWM")
            code, secs = d.stop()
            if code != 0:
                self.bug("%s %d services: daemon exited %s on SIGTERM after %.1fs"
                         % (backend, n, code, secs))
            api.stop()
            if partial and (backend == "nft" or n <= self.cfg["floor_legacy_max"]):
                r["floor"] = self.floor(ns, backend)
            if keep_for_dp:
                self.dp_keep[(backend, n)] = ns
                keep = True
            return r
        finally:
            if not keep:
                ns.delete()

    def floor(self, ns, backend):
        """iptables' own cost on the loaded table, whatever the payload: a COMMIT with no
        rules, and one new chain with one rule (what every new endpoint costs)."""
        out = {}
        for key, text in (("empty", "*nat\nCOMMIT\n"),
                          ("new_chain", "*nat\n:KUBE-SEP-BENCHFLOOR0000 - [0:0]\n"
                           "-A KUBE-SEP-BENCHFLOOR0000 -j RETURN\nCOMMIT\n")):
            def go():
                t = time.perf_counter()
                p = subprocess.run(lib.RESTORE_ARGS[backend], input=text, capture_output=True, text=True)
                return time.perf_counter() - t, p.returncode
            out[key], rc = ns.call(go)
        ns.run(lib.RESTORE_ARGS[backend], input="*nat\n:KUBE-SEP-BENCHFLOOR0000 - [0:0]\n"
               "-X KUBE-SEP-BENCHFLOOR0000\nCOMMIT\n", check=False)
        log("floor %s: empty COMMIT %s, one new chain %s" % (backend, fmt_s(out["empty"]), fmt_s(out["new_chain"])))
        return out

    def partial_syncs(self, n, backend, ns, api, d):
        """Endpoint changes and new services, one at a time, each once the daemon is idle
        and has a rate-limit token: latency from the admin call's return (the watch event
        is queued before the server answers) to the daemon's "SyncProxyRules complete"
        log line (written after iptables-restore exited)."""
        svcs, slices, order = self.objects(n)
        reps = self.cfg["partial_reps"]
        if backend == "legacy":
            reps = self.over(n, reps, self.cfg["partial_reps_legacy_over"])
        used_ips = {s["spec"]["clusterIP"] for s in svcs.values()}
        out = {"endpoint": [], "service": [], "noop": []}
        time.sleep(1.1)  # a full token

        def settle(start_idx, timeout):
            """Wait for the sync an event caused, then for the rate-limit token."""
            l, i = d.wait_sync(start=start_idx, timeout=timeout)
            time.sleep(1.1)
            return l, i

        def rec(kind, line, t, extra=None):
            kv = line["kv"]
            bd = d.breakdown(line)
            r = dict(latency=line["ts"] - t[0], admin=t[1] - t[0], elapsed=float(kv["elapsed"].rstrip("s")),
                     ipt=bd["iptables"], own=bd["own"], n_restore=bd["n_restore"],
                     bytes=int(kv["bytes"]), written=int(kv["chainsWritten"]),
                     deleted=int(kv["chainsDeleted"]), edits=int(kv["dispatchEdits"]),
                     full=kv.get("fullSync") == "true")
            if r["full"]:
                self.bug("%s %d services: a %s change caused a full sync: %s"
                         % (backend, n, kind, line["line"][:300]))
            r.update(extra or {})
            out[kind].append(r)

        timeout = 60 + n * 0.01
        for k in range(reps):
            # one endpoint of one service (spread over the list) gets a new address
            name, ei = self.changeable(n, (len(order) * (2 * k + 1)) // (2 * reps))
            sl = json.loads(json.dumps(slices[name]))
            sl["endpoints"][ei]["addresses"] = ["10.244.%d.%d" % (250 + k // 200, 2 + k % 200)]
            mark = d.mark()
            t = api.apply(sl)
            line, _ = d.wait_for(lambda l: l["msg"] == "SyncProxyRules complete" and
                                 int(l["kv"].get("chainsWritten", 0)) > 0, start=mark, timeout=timeout)
            rec("endpoint", line, t)
            time.sleep(1.1)
        for k in range(reps):
            # a new service: its slice first (one sync: nothing to program), then the Service
            name = "bench-new-%s-%d" % (backend, k)
            ip = next("10.96.%d.%d" % (a, b) for a in range(255, 0, -1) for b in range(2, 255)
                      if "10.96.%d.%d" % (a, b) not in used_ips)
            used_ips.add(ip)
            eps = [{"addresses": ["10.244.%d.%d" % (252 + k // 20, 2 + 10 * (k % 20) + e)],
                    "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": "node-x"} for e in range(10)]
            sl = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": name + "-abcde", "namespace": "ns-bench",
                               "labels": {"kubernetes.io/service-name": name}},
                  "addressType": "IPv4", "endpoints": eps,
                  "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}
            svc = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "ns-bench"},
                   "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                            "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                       "protocol": "TCP"}]}}
            mark = d.mark()
            t = api.apply(sl)
            line, _ = settle(mark, timeout)
            rec("noop", line, t)
            ports_before = int(line["kv"]["servicePorts"])
            mark = d.mark()
            t = api.apply(svc)
            line, _ = d.wait_for(lambda l: l["msg"] == "SyncProxyRules complete" and
                                 int(l["kv"]["servicePorts"]) > ports_before, start=mark,
                                 timeout=timeout)
            rec("service", line, t, {"ip": ip})
            time.sleep(1.1)
        # is the last new service really in the kernel?
        p = ns.run(["iptables-%s" % backend, "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"], check=False)
        if "-d %s/32" % out["service"][-1]["ip"] not in p.stdout:
            self.bug("%s %d services: new service %s not in KUBE-SERVICES after its sync"
                     % (backend, n, out["service"][-1]["ip"]))
        for p in d.problems():
            self.bug("%s %d services: daemon logged %s %r" % (backend, n, p["sev"], p["line"][:300]))
        summ = {}
        for kind, rs in out.items():
            if rs:
                summ[kind] = {k: median([r[k] for r in rs]) for k in
                              ("latency", "admin", "elapsed", "ipt", "own", "n_restore", "bytes",
                                        "written", "deleted", "edits")}
                summ[kind]["n"] = len(rs)
                summ[kind]["max_latency"] = max(r["latency"] for r in rs)
        summ["raw"] = out
        log("partial %s %6d: endpoint %s (sync %s, %s), service %s (sync %s, %s)" % (
            backend, n, fmt_s(summ["endpoint"]["latency"]), fmt_s(summ["endpoint"]["elapsed"]),
            fmt_b(summ["endpoint"]["bytes"]), fmt_s(summ["service"]["latency"]),
            fmt_s(summ["service"]["elapsed"]), fmt_b(summ["service"]["bytes"])))
        return summ

    def phase_full(self):
        for n in self.cfg["sizes"]:
            runs = self.over(n, self.cfg["full_runs"], self.cfg["runs_over"])
            legs = ["bare-legacy", "daemon-legacy", "daemon-nft"]
            if n > self.cfg["legacy_max"]:
                legs = ["daemon-nft"]
                self.note("No legacy runs above %d services: a legacy full sync takes minutes there "
                          "and every legacy partial sync rewrites the whole table." % self.cfg["legacy_max"])
            if n <= self.cfg["nft_single_max"]:
                legs.insert(1, "bare-nft")
            else:
                self.note("The bare single-transaction iptables-nft-restore is skipped above "
                          "%d services: it takes minutes (measurements.md: 624 s at 5k)."
                          % self.cfg["nft_single_max"])
            data = {leg: [] for leg in legs}
            for r in range(runs):
                for leg in legs:
                    last = r == runs - 1
                    if leg == "bare-nft" and r >= self.over(n, runs, self.cfg["bare_nft_runs_over"]):
                        continue
                    if leg.startswith("bare"):
                        be = leg.split("-")[1]
                        secs, rss = self.bare_restore(be, self.dump(n))
                        data[leg].append(dict(elapsed=secs, rss=rss))
                        log("full %6d run %d %s: %s (max RSS %s)" % (n, r + 1, leg, fmt_s(secs), fmt_b(rss)))
                    else:
                        be = leg.split("-")[1]
                        x = self.daemon_first_sync(n, be, partial=last,
                                                   keep_for_dp=last and n in self.cfg["dp_sizes"])
                        data[leg].append(x)
                        log("full %6d run %d %s: sync %s, start->synced %s, %s, RSS %s" % (
                            n, r + 1, leg, fmt_s(x["elapsed"]), fmt_s(x["start_to_sync"]),
                            fmt_b(x["bytes"]), fmt_b(x["rss"])))
            res = {"runs": runs}
            for leg, xs in data.items():
                res[leg] = {k: median([x[k] for x in xs]) for k in xs[0]
                            if isinstance(xs[0][k], (int, float))}
                res[leg]["all"] = [x["elapsed"] for x in xs]
                if leg.startswith("daemon"):
                    for k in ("partial", "rss_after_partial", "hwm_after_partial", "floor"):
                        res[leg][k] = xs[-1].get(k)
            self.res["full"][n] = res
            if "bare-legacy" in res and "daemon-legacy" in res:
                log("full %6d: legacy daemon/bare = %.2f" % (
                    n, res["daemon-legacy"]["elapsed"] / res["bare-legacy"]["elapsed"]))

    # ---- churn ------------------------------------------------------------------------

    def phase_churn(self):
        n, secs, rate = self.cfg["churn_size"], self.cfg["churn_secs"], self.cfg["churn_rate"]
        svcs, slices, order = self.objects(n)
        ns, api, d = self.start_daemon(n, "nft", "churn")
        try:
            d.wait_sync(timeout=120 + n * 0.05, full=True)
            time.sleep(2)
            cpu0, ccpu0 = lib.proc_cpu(d.pid)
            rss0 = d.rss().get("VmRSS")
            mark = d.mark()
            state = {"sent": 0, "late": 0, "errors": 0, "done": False}
            # pre-build the changing slices: endpoint 2 of service j alternates addresses
            nsv = len(order)
            targets = [self.changeable(n, j) for j in range(nsv)]

            def sender():
                t0 = time.time()
                total = int(secs * rate)
                for i in range(total):
                    due = t0 + i / rate
                    now = time.time()
                    if due > now:
                        time.sleep(due - now)
                    elif now - due > 0.5:
                        state["late"] += 1
                    j = (i * 7919) % nsv
                    name, ei = targets[j]
                    sl = slices[name]
                    flip = (i // nsv) % 2 == 0
                    sl2 = dict(sl)
                    eps = list(sl["endpoints"])
                    e = dict(eps[ei])
                    e["addresses"] = ["10.244.%d.%d" % (240 + j // 250 % 10, 2 + j % 250)] if flip \
                        else sl["endpoints"][ei]["addresses"]
                    eps[ei] = e
                    sl2["endpoints"] = eps
                    try:
                        api.admin.apply(sl2)
                        state["sent"] += 1
                    except Exception:
                        state["errors"] += 1
                state["done"] = True

            t_start = time.time()
            th = ns.thread(sender)
            samples = []
            while th.is_alive():
                th.join(timeout=5)
                samples.append((time.time() - t_start, d.rss().get("VmRSS")))
                d.poll_log()
            t_end = time.time()
            time.sleep(3)  # the last coalesced sync
            d.poll_log()
            cpu1, ccpu1 = lib.proc_cpu(d.pid)
            rss1 = d.rss()
            syncs = [l for l in d.syncs(mark) if l["ts"] <= t_end + 3]
            in_window = [l for l in syncs if l["ts"] <= t_end]
            el = [float(l["kv"]["elapsed"].rstrip("s")) for l in syncs]
            ipt = sum(d.breakdown(l)["iptables"] for l in syncs)
            by = [int(l["kv"]["bytes"]) for l in syncs]
            for p in d.problems(mark):
                self.bug("churn: daemon logged %s %r" % (p["sev"], p["line"][:300]))
            warm = next((r for t, r in samples if t >= 10), samples[0][1] if samples else None)
            self.res["churn"] = dict(
                services=n, seconds=t_end - t_start, rate=rate, sent=state["sent"],
                errors=state["errors"], late=state["late"],
                syncs=len(in_window), syncs_per_s=len(in_window) / (t_end - t_start),
                full_syncs=sum(1 for l in syncs if l["kv"].get("fullSync") == "true"),
                sync_elapsed_median=median(el), sync_elapsed_max=max(el) if el else None,
                bytes_median=median(by), ipt_seconds=ipt, sync_seconds=sum(el), cpu=cpu1 - cpu0, child_cpu=ccpu1 - ccpu0,
                rss_start=rss0, rss_warm=warm, rss_end=rss1.get("VmRSS"), hwm=rss1.get("VmHWM"),
                rss_samples=samples)
            c = self.res["churn"]
            log("churn %d svc %.0fs: %d changes, %d syncs (%.2f/s), CPU %.1fs + %.1fs children, "
                "RSS %s -> %s -> %s" % (n, c["seconds"], c["sent"], c["syncs"], c["syncs_per_s"],
                                       c["cpu"], c["child_cpu"], fmt_b(rss0), fmt_b(warm),
                                       fmt_b(c["rss_end"])))
            d.stop()
            api.stop()
        finally:
            ns.delete()

    # ---- dataplane ---------------------------------------------------------------------

    def wire(self, node, tag):
        """client ns -- node -- server ns; the server answers on every 10.244.0.0/16 address."""
        c, s = lib.Netns("dpc" + tag), lib.Netns("dps" + tag)
        N = node.name
        cmds = [
            ["ip", "-n", N, "link", "add", "kc0", "type", "veth", "peer", "name", "kc1", "netns", c.name],
            ["ip", "-n", N, "link", "add", "ks0", "type", "veth", "peer", "name", "ks1", "netns", s.name],
            ["ip", "-n", N, "addr", "add", "10.10.0.1/24", "dev", "kc0"],
            ["ip", "-n", N, "addr", "add", "10.20.0.1/24", "dev", "ks0"],
            ["ip", "-n", N, "link", "set", "kc0", "up"],
            ["ip", "-n", N, "link", "set", "ks0", "up"],
            ["ip", "-n", N, "route", "add", "10.244.0.0/16", "via", "10.20.0.2"],
            ["ip", "-n", c.name, "addr", "add", "10.10.0.2/24", "dev", "kc1"],
            ["ip", "-n", c.name, "link", "set", "kc1", "up"],
            ["ip", "-n", c.name, "route", "add", "default", "via", "10.10.0.1"],
            ["ip", "-n", s.name, "addr", "add", "10.20.0.2/24", "dev", "ks1"],
            ["ip", "-n", s.name, "link", "set", "ks1", "up"],
            ["ip", "-n", s.name, "route", "add", "default", "via", "10.20.0.1"],
            ["ip", "-n", s.name, "route", "add", "local", "10.244.0.0/16", "dev", "lo"],
        ]
        for cmd in cmds:
            lib.run(cmd)
        node.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])  # the node namespace's own
        srv = s.popen([self.connrate, "server", "8080", "8443", "9090"], stdout=subprocess.PIPE,
                      stderr=subprocess.STDOUT, text=True)
        if srv.stdout.readline().strip() != "listening":
            raise RuntimeError("connrate server did not start")
        return c, s

    def targets(self, node, backend, n):
        """First and last usable ClusterIP rule of KUBE-SERVICES, as the kernel holds it."""
        svcs, _, _ = self.objects(n)
        by_ip = {s["spec"]["clusterIP"]: s for s in svcs.values()}
        _, slices, _ = self.objects(n)
        rules = node.run(["iptables-%s" % backend, "-w", "5", "-t", "nat", "-S", "KUBE-SERVICES"]).stdout
        rx = re.compile(r"-d (\d+\.\d+\.\d+\.\d+)/32 .*-p tcp .*--dport (\d+) .*-j KUBE-SVC-|"
                        r"-p tcp .*-d (\d+\.\d+\.\d+\.\d+)/32 .*--dport (\d+) .*-j KUBE-SVC-")
        cands = []
        lines = [l for l in rules.splitlines() if l.startswith("-A KUBE-SERVICES")]
        for pos, l in enumerate(lines):
            m = rx.search(l)
            if not m:
                continue
            ip, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            s = by_ip.get(ip)
            if not s or s["spec"].get("internalTrafficPolicy") == "Local":
                continue
            sl = slices[s["metadata"]["name"]]
            if not any(e["conditions"]["ready"] for e in sl["endpoints"]):
                continue
            cands.append(dict(ip=ip, port=int(port), pos=pos + 1, name="%s/%s" % (
                s["metadata"]["namespace"], s["metadata"]["name"])))
        return cands[0], cands[-1], len(lines)

    def connrate_run(self, c, ip, port):
        p = c.run([self.connrate, "client", ip, str(port), str(self.cfg["dp_secs"])], check=False)
        m = re.search(r"rate=(\d+) p50_us=([\d.]+) p90_us=([\d.]+) fails=(\d+)", p.stdout)
        if p.returncode != 0 or not m:
            raise RuntimeError("connrate client %s:%d failed: %s%s" % (ip, port, p.stdout, p.stderr))
        return dict(rate=int(m.group(1)), p50=float(m.group(2)), p90=float(m.group(3)),
                    fails=int(m.group(4)))

    def phase_dataplane(self):
        self.connrate = os.path.join(self.out, "connrate")
        configs = []
        extra = []
        try:
            # baselines: kube-proxy's fixed rules, no services (a daemon synced an empty cluster)
            for be in ("legacy", "nft"):
                ns, api, d = self.start_daemon(0, be, "dpz" + be[0])
                extra.append(ns)
                d.wait_sync(timeout=60, full=True)
                d.stop()
                api.stop()
                c, s = self.wire(ns, "z" + be[0])
                extra += [c, s]
                configs.append(dict(key="%s-0" % be, backend=be, n=0, client=c, rules=1,
                                    targets={"plain": ("10.244.200.1", 8080)}))
            for (be, n), node in sorted(self.dp_keep.items(), key=lambda x: (x[0][1], x[0][0])):
                first, last, nrules = self.targets(node, be, n)
                c, s = self.wire(node, be[0] + str(n))
                extra += [c, s]
                configs.append(dict(key="%s-%d" % (be, n), backend=be, n=n, client=c, rules=nrules,
                                    first=first, last=last,
                                    targets={"plain": ("10.244.200.1", 8080),
                                             "first": (first["ip"], first["port"]),
                                             "last": (last["ip"], last["port"])}))
            # warm up every path once (ARP, route caches)
            for cf in configs:
                for ip, port in cf["targets"].values():
                    cf["client"].run([self.connrate, "client", ip, str(port), "0.05"])
            raw = {cf["key"]: {t: [] for t in cf["targets"]} for cf in configs}
            for r in range(self.cfg["dp_runs"]):
                for cf in configs:
                    for t, (ip, port) in cf["targets"].items():
                        raw[cf["key"]][t].append(self.connrate_run(cf["client"], ip, port))
            res = {}
            for cf in configs:
                e = {"backend": cf["backend"], "services": cf["n"], "rules": cf.get("rules"),
                     "first": cf.get("first"), "last": cf.get("last")}
                for t, xs in raw[cf["key"]].items():
                    e[t] = dict(rate=median([x["rate"] for x in xs]), p50=median([x["p50"] for x in xs]),
                                rates=[x["rate"] for x in xs], fails=sum(x["fails"] for x in xs))
                res[cf["key"]] = e
                log("dataplane %-14s " % cf["key"] + " ".join(
                    "%s=%s/s (p50 %.0fus)" % (t, fmt_n(e[t]["rate"]), e[t]["p50"]) for t in cf["targets"]))
            self.res["dataplane"] = dict(configs=res, runs=self.cfg["dp_runs"], secs=self.cfg["dp_secs"])
        finally:
            for ns in extra:
                ns.delete()
            for ns in self.dp_keep.values():
                ns.delete()
            self.dp_keep = {}

    # ---- nft transaction size --------------------------------------------------------

    @staticmethod
    def split_payload(path, per_txn):
        """The --dump-rules payload cut as the daemon cuts a full nft sync (rules/diff.c):
        KUBE-MARK-MASQ first, then the service ports' own chains per_txn ports at a time,
        then filter + the nat dispatch chains in one last transaction."""
        own_pfx = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SVL-")
        sections, cur = {}, None
        with open(path) as f:
            for line in f:
                if line.startswith("*"):
                    cur = sections.setdefault(line[1:].strip(), {"decl": [], "rules": []})
                elif line.startswith(":"):
                    cur["decl"].append(line)
                elif line.startswith("-"):
                    cur["rules"].append(line)
        nat = sections["nat"]
        parent = {}

        def find(x):
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x
        decl_of, own_order = {}, []
        for l in nat["decl"]:
            name = l[1:].split()[0]
            if name.startswith(own_pfx):
                parent[name] = name
                own_order.append(name)
                decl_of[name] = l
        rules_of = {}
        fixed_decl = [l for l in nat["decl"] if not l[1:].split()[0].startswith(own_pfx)]
        fixed_rules = []
        for l in nat["rules"]:
            chain = l.split()[1]
            if chain in parent:
                rules_of.setdefault(chain, []).append(l)
                m = re.search(r" -j (KUBE-\S+)", l)
                if m and m.group(1) in parent:
                    a, b = find(chain), find(m.group(1))
                    if a != b:
                        parent[b] = a
            else:
                fixed_rules.append(l)
        groups, gorder = {}, []
        for name in own_order:
            root = find(name)
            if root not in groups:
                groups[root] = []
                gorder.append(root)
            groups[root].append(name)
        mark = [l for l in fixed_rules if l.startswith("-A KUBE-MARK-MASQ ")]
        txns = ["*nat\n:KUBE-MARK-MASQ - [0:0]\n" + "".join(mark) + "COMMIT\n"]
        for i in range(0, len(gorder), per_txn):
            chains = [c for g in gorder[i:i + per_txn] for c in groups[g]]
            txns.append("*nat\n" + "".join(decl_of[c] for c in chains) +
                        "".join(l for c in chains for l in rules_of.get(c, [])) + "COMMIT\n")
        last = ""
        if "filter" in sections:
            last += "*filter\n" + "".join(sections["filter"]["decl"]) + \
                "".join(sections["filter"]["rules"]) + "COMMIT\n"
        last += "*nat\n" + "".join(fixed_decl) + "".join(fixed_rules) + "COMMIT\n"
        txns.append(last)
        return txns, len(gorder)

    def phase_txn(self):
        n = self.cfg["txn_size"]
        res = {"services": n, "sizes": {}}
        split = {}
        for k in self.cfg["txn_sizes"]:
            split[k], ports = self.split_payload(self.dump(n), k)
        res["ports"] = ports
        times = {k: [] for k in split}
        for r in range(self.cfg["txn_runs"]):
            for k, txns in split.items():
                ns = lib.Netns("txn")
                try:
                    def go():
                        per = []
                        t = time.perf_counter()
                        for x in txns:
                            t1 = time.perf_counter()
                            p = subprocess.run(lib.RESTORE_ARGS["nft"], input=x, capture_output=True,
                                               text=True)
                            per.append(time.perf_counter() - t1)
                            if p.returncode != 0:
                                raise RuntimeError("txn restore failed: " + p.stderr[-1000:])
                        return time.perf_counter() - t, per
                    total, per = ns.call(go)
                finally:
                    ns.delete()
                blocks = per[1:-1]  # the MARK-MASQ transaction first, filter + dispatch last
                full_blocks = blocks if ports % k == 0 else blocks[:-1]
                times[k].append(dict(total=total, n=len(txns), first=full_blocks[0] if full_blocks else None,
                                     last_own=full_blocks[-1] if full_blocks else None, final=per[-1],
                                     blocks=sum(blocks)))
                x = times[k][-1]
                log("txn %d services, %d per transaction: %s in %d transactions (first block %s, "
                    "last full block %s, dispatch %s)" % (n, k, fmt_s(total), len(txns), fmt_s(x["first"]),
                                                          fmt_s(x["last_own"]), fmt_s(x["final"])))
        for k, xs in times.items():
            res["sizes"][k] = {f: median([x[f] for x in xs]) for f in xs[0]}
            res["sizes"][k]["all"] = [x["total"] for x in xs]
        self.res["txn"] = res

    # ---- all ---------------------------------------------------------------------------

    def run(self):
        t0 = time.time()
        self.res["machine"] = machine()
        self.res["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.res["load_start"] = loadavg()
        for ph in PHASES:
            if ph not in self.phases:
                continue
            if ph == "dataplane" and not self.dp_keep:
                self.note("dataplane: no daemon namespaces kept (run the full phase with it)")
                continue
            t = time.time()
            log("== phase", ph)
            getattr(self, "phase_" + ph)()
            self.res.setdefault("phase_seconds", {})[ph] = time.time() - t
        self.res["seconds"] = time.time() - t0
        self.res["load_end"] = loadavg()


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ipt = lib.run(["iptables-legacy", "--version"], check=False).stdout.strip()
    rev = lib.run(["git", "-C", lib.REPO, "describe", "--always", "--dirty", "--abbrev=12"],
                  check=False).stdout.strip()
    ver = lib.run([lib.BIN, "--version"], check=False)
    return dict(cpu=cpu, cores=os.cpu_count(), kernel=platform.release(),
                iptables=re.sub(r"\s*\(legacy\)", "", ipt), git=rev,
                binary=(ver.stdout or ver.stderr).strip().splitlines()[0] if (ver.stdout or ver.stderr) else "?",
                mem_gb=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=sorted(MODES), default="full")
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--phases", default=",".join(PHASES))
    ap.add_argument("--json", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON",
                    help="override a mode setting, e.g. --set sizes=[100,1000] --set churn_secs=30")
    a = ap.parse_args()
    phases = a.phases.split(",")
    for kv in a.set:
        k, v = kv.split("=", 1)
        if k not in MODES[a.mode]:
            ap.error("unknown setting " + k)
        MODES[a.mode][k] = json.loads(v)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    b = Bench(a.mode, a.fixtures, a.out, phases)
    try:
        b.run()
    finally:
        lib.Netns.delete_all()
        with open(a.json, "w") as f:
            json.dump(b.res, f, indent=1, default=str)


if __name__ == "__main__":
    main()
