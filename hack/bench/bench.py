#!/usr/bin/python3
"""kube-iptables-proxy benchmarks: the driver behind `make bench` (hack/bench.sh).

Figures, never assertions: the exit status says only whether the benchmark ran.
Every kernel-side measurement runs in throwaway network namespaces (lib.py).

  bench.py --mode full|quick --fixtures DIR --out DIR [--phases render,full,...]

Phases (in this order; --phases picks a subset):
  render    --dump-rules --from-file: wall time, max RSS, rules/s
  full      first full sync into an empty namespace: bare iptables-restore of the
            --dump-rules payload (rendered with the daemon's own flags, so the same
            dispatch layout) in one transaction (what upstream does) vs the daemon (nft
            and legacy), listing N services from the test API server; then, in the last
            daemon of each backend, partial syncs (one endpoint changed, one new service)
            and the steady-state RSS
  dataplane new TCP connections/s from a client namespace through a node namespace to a
            server namespace, for plain traffic and the first/last service of the linear
            KUBE-SERVICES, with --service-dispatch=linear and =tree, against a node without
            services
  churn     a sustained stream of endpoint changes: syncs/s, CPU, RSS over time
  txn       bare iptables-nft-restore of the payload split like the daemon splits it, for
            several services-per-transaction sizes

The full, partial and churn daemons run with the daemon's default flags (auto dispatch:
linear up to RULES_DISPATCH_AUTO_PORTS service ports, tree above); every check of a rule
in the kernel follows KUBE-SERVICES into the KUBE-CIP chains (lib.walk).
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
    # partial_legacy_max: no legacy partial syncs above (each one restores the whole table:
    # about a minute at 10k services on a slow kernel); nft_single_max: no bare
    # single-transaction nft run above; floor_legacy_max: the bare "floor" restores (empty
    # commit, one new chain) on legacy only up to there; dispatch: --service-dispatch of the
    # render/full/churn phases ("auto": no flag, the daemon's default, as an operator runs
    # it); dp_sizes: dataplane sizes, each in both layouts, on legacy only up to
    # dp_legacy_max (loading a 20k table into iptables-legacy takes minutes per layout);
    # dp_linear_legacy_max: legacy's linear layout only up to there (restoring it takes
    # iptables-legacy-restore 40 s at 10k services on a slow kernel; nft shows what a linear
    # KUBE-SERVICES costs at 10k and 20k); dp_threshold_sizes: more dataplane sizes, nft only,
    # to find where tree starts to beat linear; dp_noext: the diagnostic with the filter
    # dispatch chains emptied, at each backend's biggest dataplane size
    # (full: one run where a run costs minutes, so that it all fits in 15 minutes on 2 cores
    # even on a kernel twice as slow as a quiet one)
    "full": dict(sizes=[100, 1000, 5000, 10000, 20000], render_runs=5, render_runs_over={5000: 3, 20000: 1},
                 full_runs=3, runs_over={5000: 1}, legacy_max=10000, partial_legacy_max=1000,
                 nft_single_max=2000, bare_nft_runs_over={1000: 1},
                 partial_reps=3, partial_reps_over={20000: 2}, partial_reps_legacy_over={5000: 1},
                 floor_legacy_max=1000, churn_size=10000, churn_secs=50, churn_rate=50,
                 dispatch="auto", dp_sizes=[1000, 10000, 20000], dp_legacy_max=10000, dp_linear_legacy_max=1000,
                 dp_noext=True,
                 dp_threshold_sizes=[100, 250, 500, 1000],
                 dp_runs=5, dp_runs_over={10000: 4}, dp_secs=0.25,
                 txn_size=2000, txn_sizes=[50, 100, 200], txn_runs=1),
    # (quick: under 2 minutes with the build: two runs, legacy's dataplane and the filter
    # diagnostic only in full runs)
    "quick": dict(sizes=[100, 1000], render_runs=3, render_runs_over={}, full_runs=2, runs_over={},
                  legacy_max=10000, partial_legacy_max=10000, nft_single_max=100,
                  bare_nft_runs_over={1000: 1},
                  partial_reps=1, partial_reps_over={}, partial_reps_legacy_over={}, floor_legacy_max=5000,
                  churn_size=1000, churn_secs=10, churn_rate=50, dispatch="auto",
                  dp_sizes=[100, 1000], dp_legacy_max=100, dp_linear_legacy_max=100,
                  dp_noext=False, dp_threshold_sizes=[], dp_runs=3,
                  dp_runs_over={}, dp_secs=0.2, txn_size=1000, txn_sizes=[50, 100, 200], txn_runs=1),
}
PHASES = ["render", "full", "dataplane", "churn", "txn"]


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
        self._dumps = set()  # dumps rendered by this run
        self._dump_chains = {}
        self._layouts = {}
        self._nfacct = None

    # ---- inputs ---------------------------------------------------------------

    def fixture(self, n):
        path = os.path.join(self.fixtures, "cluster-%d.json" % n)
        if not os.path.exists(path):  # bench.sh generates the usual sizes; BENCH_SET may want others
            log("generating %d services x 10 endpoints" % n)
            lib.run([lib.PY, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen.py"),
                     "--services", str(n), "--endpoints", "10", "--seed", "1", "-o", path])
        return path

    def has_nfacct(self):
        """Whether the daemon (--iptables-nfacct=auto) will use nfacct counters here: the
        kernel has nfacct and we may create counters (tried in a scratch namespace)."""
        if self._nfacct is None:
            ns = lib.Netns("nfa")
            try:
                self._nfacct = ns.run(["nfacct", "add", "kipb-probe"], check=False).returncode == 0
            except OSError:
                self._nfacct = False
            finally:
                ns.delete()
        return self._nfacct

    def dump_flags(self, dispatch=None):
        """--dump-rules flags for the payload the daemon writes: its node and CIDR flags,
        the nfacct choice its auto makes on this kernel (--dump-rules does not probe the
        kernel), and the dispatch flag."""
        return lib.DUMP_FLAGS + ["--iptables-nfacct=%s" % ("true" if self.has_nfacct() else "false")] + \
            self.dispatch_flags(dispatch)

    def prep_ns(self, ns):
        """What the daemon creates before its first restore and a bare one needs too: the
        nfacct counters its rules count into."""
        if self.has_nfacct():
            for name in lib.NFACCT:
                ns.run(["nfacct", "add", name])

    def dispatch_flags(self, dispatch=None):
        """The --service-dispatch flag for dispatch (default: the mode's); none for auto."""
        d = dispatch or self.cfg["dispatch"]
        return [] if d == "auto" else ["--service-dispatch", d]

    def dump(self, n, dispatch=None):
        """The --dump-rules payload of n services with the daemon's flags (dispatch None) or
        --service-dispatch=dispatch; rendered once per run."""
        d = dispatch or self.cfg["dispatch"]
        if d != self.cfg["dispatch"] and self._layouts.get((n, self.cfg["dispatch"])) == d:
            d = self.cfg["dispatch"]  # the default flags give that layout: the same payload
        path = os.path.join(self.fixtures, "dump-%d%s.rules" % (n, "" if d == self.cfg["dispatch"] else "-" + d))
        if path not in self._dumps:
            with open(path + ".tmp", "w") as f:
                p = subprocess.run([lib.BIN, "--dump-rules", "--from-file", self.fixture(n)] + self.dump_flags(d),
                                   stdout=f, stderr=subprocess.PIPE, text=True)
            if p.returncode != 0:
                raise RuntimeError("--dump-rules failed: " + p.stderr[-2000:])
            os.replace(path + ".tmp", path)
            self._dumps.add(path)
        return path

    def dump_chains(self, n, dispatch=None):
        """nat KUBE-SERVICES and KUBE-CIP chains of a dump, and its layout."""
        path = self.dump(n, dispatch)
        if path not in self._dump_chains:
            with open(path) as f:
                ch = lib.dispatch_chains(f)
            self._dump_chains = {path: (ch, lib.layout_of(ch))}  # one at a time: they are big
        return self._dump_chains[path]

    def layout(self, n, dispatch=None):
        """The layout a dispatch setting gives n services (what --dump-rules writes)."""
        key = (n, dispatch or self.cfg["dispatch"])
        if key not in self._layouts:
            self._layouts[key] = self.dump_chains(n, dispatch)[1]
        return self._layouts[key]

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
                # the first run writes the payload the full phase restores (the daemon's flags)
                out = os.path.join(self.fixtures, "dump-%d.rules" % n) if i == 0 else os.devnull
                with open(out, "w") as f:
                    t = time.perf_counter()
                    p = subprocess.run(["/usr/bin/time", "-f", "%M", lib.BIN, "--dump-rules",
                                        "--from-file", self.fixture(n)] + self.dump_flags(),
                                       stdout=f, stderr=subprocess.PIPE, text=True)
                    walls.append(time.perf_counter() - t)
                if p.returncode != 0:
                    raise RuntimeError("--dump-rules failed: " + p.stderr[-2000:])
                if i == 0:
                    self._dumps.add(out)
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
                                         chains=chains, bytes=size, rules_per_s=rules / w,
                                         layout=self.layout(n))
            log("render %6d: %s, %s rules (%s/s), max RSS %s, %s layout" % (
                n, fmt_s(w), fmt_n(rules), fmt_n(rules / w), fmt_b(median(rss)), self.layout(n)))

    # ---- bare restores -------------------------------------------------------------

    def bare_restore(self, backend, payload_path):
        """One transaction of the whole payload into a fresh namespace: (seconds, max RSS)."""
        ns = lib.Netns("bare", big=os.path.getsize(payload_path) > self.BIG_BYTES)
        try:
            self.prep_ns(ns)
            lib.settle()
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

    BIG_BYTES = 8 << 20  # payloads from about 2k services: their namespaces take a while to free

    def start_daemon(self, n, backend, tag, dispatch=None):
        lib.settle()
        ns = lib.Netns(tag, big=n >= 2000)
        try:
            api = lib.ApiServer(ns, self.fixture(n), os.path.join(self.logdir, "%s-api.log" % ns.name))
            d = lib.Daemon(ns, api.url, backend, os.path.join(self.logdir, "%s.log" % ns.name),
                           extra=self.dispatch_flags(dispatch), shim=self.shim)
            return ns, api, d
        except BaseException:
            ns.delete()
            raise

    def daemon_first_sync(self, n, backend, last, keep_for_dp):
        """One daemon's first full sync into an empty namespace; on the last run of a size
        also its layout check and (where the backend can afford them) the partial syncs."""
        partial = last and (backend == "nft" or n <= self.cfg["partial_legacy_max"])
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
            if last:
                # the layout in the kernel must be the one the bare restore's payload has
                r["layout"] = lib.NatView(ns, backend).layout()
                if r["layout"] != self.layout(n):
                    self.bug("%s %d services: the daemon wrote the %s layout, --dump-rules with the "
                             "same flags the %s one" % (backend, n, r["layout"], self.layout(n)))
            if partial:
                r["partial"] = self.partial_syncs(n, backend, ns, api, d)
                st = d.rss()
                r["rss_after_partial"], r["hwm_after_partial"] = st.get("VmRSS"), st.get("VmHWM")
                changes = r["partial"].pop("changes")
                if backend == "nft" and n == self.cfg["churn_size"] and "churn" in self.phases:
                    time.sleep(1.1)
                    changes["slices"] |= self.churn(n, ns, api, d)
                if keep_for_dp:
                    self.revert_partial(n, backend, api, d, changes)
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
        reps = self.over(n, self.cfg["partial_reps"], self.cfg["partial_reps_over"])
        if backend == "legacy":
            reps = self.over(n, reps, self.cfg["partial_reps_legacy_over"])
        used_ips = {s["spec"]["clusterIP"] for s in svcs.values()}
        out = {"endpoint": [], "service": [], "noop": []}
        changes = {"slices": set(), "services": []}  # what revert_partial puts back
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
            changes["slices"].add(name)
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
            changes["services"].append((name, sl["metadata"]["name"]))
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
        # is every new service really in the kernel, wherever the layout put its rule? A
        # packet to it must reach its KUBE-SVC chain through KUBE-SERVICES (and the tree)
        view = lib.NatView(ns, backend)
        for x in out["service"]:
            w = lib.walk(view, x["ip"], 80)
            x["walked"] = w["walked"]
            if not (w["target"] or "").startswith("KUBE-SVC-"):
                self.bug("%s %d services: a packet to new service %s:80 does not reach a KUBE-SVC "
                         "chain after its sync (%s layout; walked %s, ended in %s)"
                         % (backend, n, x["ip"], view.layout(), " -> ".join(w["chains"]), w["target"]))
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
        summ["changes"] = changes
        log("partial %s %6d: endpoint %s (sync %s, %s), service %s (sync %s, %s)" % (
            backend, n, fmt_s(summ["endpoint"]["latency"]), fmt_s(summ["endpoint"]["elapsed"]),
            fmt_b(summ["endpoint"]["bytes"]), fmt_s(summ["service"]["latency"]),
            fmt_s(summ["service"]["elapsed"]), fmt_b(summ["service"]["bytes"])))
        return summ

    def revert_partial(self, n, backend, api, d, changes):
        """Put the cluster back as the fixture has it (the changed slices, no new services)
        and wait for the sync that has it all: the rules the dataplane phase measures are
        then exactly the fixture's (checked at DP_CHECK_SIZE against a restored payload)."""
        _, slices, _ = self.objects(n)
        mark = d.mark()
        for name in sorted(changes["slices"]):
            api.apply(slices[name])
        for svc, sl in changes["services"]:
            api.ns.call(api.admin.delete, "v1", "Service", svc, "ns-bench")
            api.ns.call(api.admin.delete, "discovery.k8s.io/v1", "EndpointSlice", sl, "ns-bench")
        t_last = time.time()
        # the calls take well under the 1 s rate limit after the first sync they cause, so
        # the sync that has them all starts after the last one returned
        try:
            d.wait_for(lambda l: l["msg"] == "SyncProxyRules complete" and
                       l["ts"] - float(l["kv"]["elapsed"].rstrip("s")) > t_last, start=mark,
                       timeout=20 + n * 0.002)
        except TimeoutError:
            self.note("%s %d services: no sync started after the partial syncs were reverted; the "
                      "dataplane may measure one or two changed services" % (backend, n))
        for p in d.problems(mark):
            self.bug("%s %d services: daemon logged %s %r while reverting" % (backend, n, p["sev"], p["line"][:300]))

    def phase_full(self):
        for n in self.cfg["sizes"]:
            runs = self.over(n, self.cfg["full_runs"], self.cfg["runs_over"])
            legs = ["bare-legacy", "daemon-legacy", "daemon-nft"]
            if n > self.cfg["legacy_max"]:
                legs = ["daemon-nft"]
                self.note("No legacy full/partial runs above %d services: a legacy full sync takes "
                          "minutes there." % self.cfg["legacy_max"])
            elif n > self.cfg["partial_legacy_max"]:
                self.note("No legacy partial syncs above %d services: iptables-legacy-restore reads and "
                          "rewrites the whole table for every change (see the %s-service row; the runs of "
                          "2026-12-04 and 2026-12-05 in hack/bench/RESULTS.md: 3.0 s and 11.6 s per partial "
                          "sync at 5k, 11.2 s and 58 s at 10k)."
                          % (self.cfg["partial_legacy_max"], fmt_n(self.cfg["partial_legacy_max"])))
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
                        # the rules of a run without partial syncs (the one before the last)
                        # stay for the dataplane phase when it wants them; with one run, the
                        # last run's, its partial syncs reverted
                        keep = r == max(0, runs - 2) and "dataplane" in self.phases and (
                            (be, n) in self.dp_groups() or n == self.DP_CHECK_SIZE)
                        x = self.daemon_first_sync(n, be, last=last, keep_for_dp=keep)
                        data[leg].append(x)
                        log("full %6d run %d %s: sync %s, start->synced %s, %s, RSS %s" % (
                            n, r + 1, leg, fmt_s(x["elapsed"]), fmt_s(x["start_to_sync"]),
                            fmt_b(x["bytes"]), fmt_b(x["rss"])))
            res = {"runs": runs, "layout": self.layout(n)}
            for leg, xs in data.items():
                res[leg] = {k: median([x[k] for x in xs]) for k in xs[0]
                            if isinstance(xs[0][k], (int, float))}
                res[leg]["all"] = [x["elapsed"] for x in xs]
                if leg.startswith("daemon"):
                    for k in ("partial", "rss_after_partial", "hwm_after_partial", "floor", "layout"):
                        res[leg][k] = xs[-1].get(k)
            self.res["full"][n] = res
            log("full %6d: %s layout (%s service ports)" % (n, res["layout"], fmt_n(
                (res.get("daemon-nft") or res.get("daemon-legacy") or {}).get("ports"))))
            if "bare-legacy" in res and "daemon-legacy" in res:
                log("full %6d: legacy daemon/bare = %.2f" % (
                    n, res["daemon-legacy"]["elapsed"] / res["bare-legacy"]["elapsed"]))

    # ---- churn ------------------------------------------------------------------------

    def phase_churn(self):
        """Standalone, when the full phase did not run it in its last nft daemon of that size."""
        if self.res["churn"] is not None:
            return
        n = self.cfg["churn_size"]
        ns, api, d = self.start_daemon(n, "nft", "churn")
        try:
            d.wait_sync(timeout=120 + n * 0.05, full=True)
            time.sleep(2)
            self.churn(n, ns, api, d)
            d.stop()
            api.stop()
        finally:
            ns.delete()

    def churn(self, n, ns, api, d):
        """The churn run in a daemon that has synced n services and is idle (also the full
        phase's last nft daemon of that size, after its partial syncs: one first full sync
        fewer to wait for). The daemon keeps running. Returns the names of the slices changed."""
        secs, rate = self.cfg["churn_secs"], self.cfg["churn_rate"]
        svcs, slices, order = self.objects(n)
        cpu0, ccpu0 = lib.proc_cpu(d.pid)
        rss0 = d.rss().get("VmRSS")
        mark = d.mark()
        state = {"sent": 0, "late": 0, "errors": 0, "done": False, "changed": set()}
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
                state["changed"].add(name)
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
        return state["changed"]

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

    DP_CHECK_SIZE = 100  # a restored payload is compared with the daemon's own rules at this size
    DP_PLAIN = ("10.244.200.1", 8080)  # a pod IP: no service matches it

    def dp_groups(self):
        """(backend, services) the dataplane phase measures, each in both layouts."""
        g = {(be, n) for n in self.cfg["dp_sizes"] for be in ("nft", "legacy")
             if be == "nft" or n <= self.cfg["dp_legacy_max"]}
        g |= {("nft", n) for n in self.cfg["dp_threshold_sizes"]}
        return sorted(g, key=lambda x: (x[1], x[0] != "nft"))

    def service_ports(self, n):
        svcs, _, _ = self.objects(n)
        return sum(len(s["spec"]["ports"]) for s in svcs.values())

    def dp_targets(self, n):
        """The first and the last usable ClusterIP rule of the linear KUBE-SERVICES (--dump-rules
        --service-dispatch=linear; the tree layout holds the same rules elsewhere): TCP, ready
        endpoints, internalTrafficPolicy Cluster. Also the chain's length."""
        svcs, slices, _ = self.objects(n)
        by_ip = {s["spec"]["clusterIP"]: s for s in svcs.values()}
        lines = self.dump_chains(n, "linear")[0].get("KUBE-SERVICES", [])
        cands = []
        for pos, spec in enumerate(lines):
            dst, plen, proto, dport, target, other = lib.rule_match(spec)
            if other or proto != "tcp" or plen != 32 or not (target or "").startswith("KUBE-SVC-"):
                continue
            ip = lib.ip4_str(dst)
            s = by_ip.get(ip)
            if not s or s["spec"].get("internalTrafficPolicy") == "Local":
                continue
            if not any(e["conditions"]["ready"] for e in slices[s["metadata"]["name"]]["endpoints"]):
                continue
            cands.append(dict(ip=ip, port=dport, pos=pos + 1, chain=target, name="%s/%s" % (
                s["metadata"]["namespace"], s["metadata"]["name"])))
        return cands[0], cands[-1], len(lines)

    @staticmethod
    def with_jumps(text):
        """text with the daemon's jump rules from the built-in chains (lib.JUMPS) added to
        each table's section, as a full sync into an empty namespace writes them."""
        out, table = [], None
        for line in text.splitlines(True):
            if line.startswith("*"):
                table = line[1:].strip()
            elif line.startswith("COMMIT"):
                out += ["-I %s %s\n" % (c, spec) for t, c, spec in lib.JUMPS if t == table]
            out.append(line)
        return "".join(out)

    def restore_txns(self, ns, backend, txns):
        """Load txns in order (the dataplane's loads: not figures of the report, so they wait
        for the xtables lock as long as it takes, e.g. behind someone else's legacy restore)."""
        argv = [("600" if a == "5" and lib.RESTORE_ARGS[backend][i - 1] == "-w" else a)
                for i, a in enumerate(lib.RESTORE_ARGS[backend])]

        def go():
            for x in txns:
                p = subprocess.run(argv, input=x, capture_output=True, text=True)
                if p.returncode != 0:
                    raise RuntimeError("%s restore failed: %s" % (backend, p.stderr[-2000:]))
        t = time.perf_counter()
        ns.call(go)
        return time.perf_counter() - t

    def dp_restore(self, ns, backend, path):
        """Load a --dump-rules payload into an empty namespace as the daemon's first full sync
        leaves it: legacy in one transaction, nft split as the daemon splits it (one bare
        transaction takes minutes above 2k services), plus the jump rules from the built-in
        chains. Checked against a daemon's own rules at DP_CHECK_SIZE."""
        if backend == "legacy":
            with open(path) as f:
                txns = [f.read()]
        else:
            txns, _, _ = self.split_payload(path, 100)
        txns[-1] = self.with_jumps(txns[-1])
        self.prep_ns(ns)
        return self.restore_txns(ns, backend, txns)

    OWN_PFX = ("KUBE-SVC-", "KUBE-SEP-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SVL-")

    def dump_dispatch(self, n, dispatch):
        """{table: {chain: [its "-A" lines]}} of a dump's chains but the services' own
        (KUBE-SVC/SEP/EXT/FW/SVL, the same in both layouts), in the dump's order (tree chains
        children first): nat KUBE-SERVICES and its KUBE-CIP tree, the filter dispatch chains
        and theirs, the fixed chains."""
        out, table = {}, None
        with open(self.dump(n, dispatch)) as f:
            for line in f:
                if line.startswith("*"):
                    table = out.setdefault(line[1:].strip(), {})
                elif line.startswith(":"):
                    name = line[1:].split()[0]
                    if not name.startswith(self.OWN_PFX):
                        table.setdefault(name, [])
                elif line.startswith("-A "):
                    name = line.split(" ", 2)[1]
                    if not name.startswith(self.OWN_PFX):
                        table.setdefault(name, []).append(line)
        return out

    def dp_switch(self, ns, backend, n, frm, to):
        """Change a loaded namespace's layout from frm to to, in place: the services' own
        chains are the same in both; only the dispatch chains differ (nat KUBE-SERVICES and
        the KUBE-CIP tree; filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES, KUBE-PROXY-FIREWALL
        and their trees). Per table: the new chains first (children first; nft in blocks of
        about 4000 rules, as the daemon writes them), then the changed ones rewritten and the
        old ones flushed and deleted."""
        old, new = self.dump_dispatch(n, frm), self.dump_dispatch(n, to)
        txns = []
        for table in ("filter", "nat"):
            o, nw = old.get(table, {}), new.get(table, {})
            added = [c for c in nw if c not in o]
            changed = [c for c in nw if c in o and nw[c] != o[c]]
            gone = [c for c in o if c not in nw]
            decl, body = [], []
            for c in added:
                decl.append(":%s - [0:0]\n" % c)
                body += nw[c]
                if backend == "nft" and len(body) >= 4000:
                    txns.append("*%s\n" % table + "".join(decl + body) + "COMMIT\n")
                    decl, body = [], []
            if decl or changed or gone:
                txns.append("*%s\n" % table + "".join(decl) + "".join(":%s - [0:0]\n" % c for c in changed) +
                            "".join(body) + "".join(l for c in changed for l in nw[c]) +
                            "".join("-F %s\n" % c for c in gone) + "".join("-X %s\n" % c for c in gone) +
                            "COMMIT\n")
        return self.restore_txns(ns, backend, txns)

    def filter_chains_ok(self, ns, backend, n, layout):
        """Whether the kernel's filter chains are the ones the layout's payload declares."""
        want = {c for c in self.dump_dispatch(n, layout).get("filter", {})}
        got = {l[1:].split()[0] for l in ns.run(["iptables-%s-save" % backend, "-t", "filter"]).stdout.splitlines()
               if l.startswith(":KUBE-") and not l.startswith(":KUBE-PROXY-CANARY")}
        own = {c for c in got if c.startswith(self.OWN_PFX)}
        return want == got - own, sorted(want ^ (got - own))[:4]

    def dp_nodes(self, backend, n):
        """A node namespace holding the rules of n services: {layout: (namespace, how)}. The
        full phase's daemon's (default flags: the auto layout) when there is one; else the
        linear --dump-rules payload restored (so that tree, swapped in later, comes last).
        The other layout is swapped into the same namespace later. (Not two namespaces
        restored in parallel: iptables-legacy-restore holds the machine-wide xtables lock for
        its whole run, over a minute at 20k services.)"""
        ns = self.dp_keep.pop((backend, n), None)
        if ns is not None:
            return {self.layout(n): (ns, dict(how="daemon", seconds=None))}
        ns = lib.Netns("dpn", big=n >= 2000)
        try:
            secs = self.dp_restore(ns, backend, self.dump(n, "linear"))
        except BaseException:
            ns.delete()
            raise
        log("dataplane %s %d: linear payload restored in %s" % (backend, n, fmt_s(secs)))
        return {"linear": (ns, dict(how="restored", seconds=secs))}

    @staticmethod
    def norm_save(text):
        """iptables-save text comparable across namespaces: no comments, counters or canary."""
        return [re.sub(r"\[\d+:\d+\]", "[0:0]", l) for l in text.splitlines()
                if l and not l.startswith("#") and "KUBE-PROXY-CANARY" not in l]

    def dp_check_restore(self, backend, node, n):
        """Is a restored payload (how the phase loads what no daemon left) the daemon's rules?"""
        scratch = lib.Netns("chk")
        try:
            self.dp_restore(scratch, backend, self.dump(n))
            diff = []
            for t in ("nat", "filter"):
                a = self.norm_save(node.run(["iptables-%s-save" % backend, "-t", t]).stdout)
                b = self.norm_save(scratch.run(["iptables-%s-save" % backend, "-t", t]).stdout)
                if a != b:
                    diff += ["%s: daemon-only %r, restored-only %r" % (
                        t, sorted(set(a) - set(b))[:3], sorted(set(b) - set(a))[:3])]
            ok = not diff
            if ok:
                log("dataplane %s %d: the restored payload equals the daemon's rules" % (backend, n))
            else:
                self.note("dataplane %s %d services: the restored --dump-rules payload (plus the "
                          "jump rules) differs from what the daemon wrote: %s" % (backend, n, "; ".join(diff)))
            return ok
        finally:
            scratch.delete()

    def connrate_run(self, c, ip, port):
        p = c.run([self.connrate, "client", ip, str(port), str(self.cfg["dp_secs"])], check=False)
        m = re.search(r"rate=(\d+) p50_us=([\d.]+) p90_us=([\d.]+) fails=(\d+)", p.stdout)
        if p.returncode != 0 or not m:
            raise RuntimeError("connrate client %s:%d failed: %s%s" % (ip, port, p.stdout, p.stderr))
        return dict(rate=int(m.group(1)), p50=float(m.group(2)), p90=float(m.group(3)),
                    fails=int(m.group(4)))

    def dp_window(self, legs, n=0):
        """Interleaved runs of legs [(key, client, ip, port)]: every round runs each once, so
        that whatever else the machine does spreads over all of them. Medians per key."""
        lib.settle()
        for _, c, ip, port in legs:  # warm up every path (ARP, route caches)
            c.run([self.connrate, "client", ip, str(port), "0.05"])
        raw = {k: [] for k, _, _, _ in legs}
        for r in range(self.over(n, self.cfg["dp_runs"], self.cfg["dp_runs_over"])):
            for k, c, ip, port in legs:
                raw[k].append(self.connrate_run(c, ip, port))
        return {k: dict(rate=median([x["rate"] for x in xs]), p50=median([x["p50"] for x in xs]),
                        rates=[x["rate"] for x in xs], fails=sum(x["fails"] for x in xs))
                for k, xs in raw.items()}

    def phase_dataplane(self):
        self.connrate = os.path.join(self.out, "connrate")
        groups = self.dp_groups()
        extra = []
        res = dict(runs=self.cfg["dp_runs"], runs_over=self.cfg["dp_runs_over"], secs=self.cfg["dp_secs"],
                   baseline={}, groups={},
                   checks={}, sizes=sorted({n for _, n in groups}),
                   threshold_sizes=self.cfg["dp_threshold_sizes"])
        try:
            # baselines: kube-proxy's fixed rules, no services (a daemon synced an empty cluster)
            base = {}
            for be in sorted({be for be, _ in groups}):
                ns, api, d = self.start_daemon(0, be, "dpz" + be[0])
                extra.append(ns)
                d.wait_sync(timeout=60, full=True)
                d.stop()
                api.stop()
                c, s = self.wire(ns, "z" + be[0])
                extra += [c, s]
                w = lib.walk(lib.NatView(ns, be), *self.DP_PLAIN)
                base[be] = c
                res["baseline"][be] = dict(walked=w["walked"], windows=[])
            # a restored payload against the daemon's own rules, where a daemon left some
            for be in ("nft", "legacy"):
                node = self.dp_keep.get((be, self.DP_CHECK_SIZE))
                if node is not None:
                    res["checks"][be] = self.dp_check_restore(be, node, self.DP_CHECK_SIZE)
                    if (be, self.DP_CHECK_SIZE) not in groups:
                        node.delete()
                        del self.dp_keep[(be, self.DP_CHECK_SIZE)]
            for be, n in groups:
                first, last, nrules = self.dp_targets(n)
                nodes = self.dp_nodes(be, n)
                wired = []
                try:
                    order = list(nodes) + [l for l in ("tree", "linear") if l not in nodes]
                    # (only where the node holds tree already: a restored node is linear anyway)
                    if be == "legacy" and n > self.cfg["dp_linear_legacy_max"] and "linear" not in nodes:
                        order.remove("linear")
                        self.note("Legacy's dataplane in the linear layout only up to %s services: "
                                  "restoring it takes iptables-legacy-restore most of a minute at 10k "
                                  "(BENCH_SET='dp_linear_legacy_max=10000' measures it; the runs of "
                                  "2026-12-04 and 2026-12-05 in hack/bench/RESULTS.md: plain 0.29x/0.27x, "
                                  "first 0.96x/0.88x, last 0.35x/0.27x of the baseline at 10k)."
                                  % fmt_n(self.cfg["dp_linear_legacy_max"]))
                    for layout in order:
                        sw = None
                        if layout not in nodes:  # swap it into the one namespace there is
                            (frm, (node, how)), = nodes.items()
                            sw = self.dp_switch(node, be, n, frm, layout)
                            nodes = {layout: (node, how)}
                        node, how = nodes[layout]
                        c = next((w[1] for w in wired if w[0] is node), None)
                        if c is None:
                            c, srv = self.wire(node, be[0] + str(n))
                            wired.append((node, c, srv))
                        e = self.dp_config(res, base, be, n, layout, node, c, first, last, nrules, how, sw)
                        if layout == "tree" and self.cfg["dp_noext"] and \
                                n == max(x for b, x in groups if b == be):
                            self.dp_noext(be, n, node, base[be], c, e, refill=layout != order[-1])
                finally:
                    for node, c, srv in wired:
                        c.delete()
                        srv.delete()
                    for node, _ in nodes.values():
                        node.delete()
            for be, b in res["baseline"].items():
                rs = [r for w in b["windows"] for r in w["rates"]]
                b["rate"] = median(rs)
                b["p50"] = median([w["p50"] for w in b["windows"]])
            self.res["dataplane"] = res
        finally:
            for ns in extra:
                ns.delete()
            for ns in self.dp_keep.values():
                ns.delete()
            self.dp_keep = {}

    def dp_config(self, res, base, be, n, layout, node, c, first, last, nrules, how, switched):
        """One node in one layout: check where each target's packet goes, then measure it
        interleaved with the same backend's baseline."""
        view = lib.NatView(node, be)
        key = "%s-%d-%s" % (be, n, layout)
        e = dict(backend=be, services=n, layout=layout, ports=self.service_ports(n),
                 kernel_layout=view.layout(), linear_rules=nrules, loaded=how["how"],
                 load_seconds=how["seconds"], switch_seconds=switched, first=first, last=last)
        if e["kernel_layout"] != layout:
            self.bug("dataplane %s: the kernel holds the %s layout" % (key, e["kernel_layout"]))
        ok, diff = self.filter_chains_ok(node, be, n, layout)
        if not ok:
            self.bug("dataplane %s: the kernel's filter chains are not the %s payload's: %s" % (key, layout, diff))
        legs = [("baseline", base[be]) + self.DP_PLAIN]
        for t, (ip, port, want) in (("plain", self.DP_PLAIN + (None,)),
                                    ("first", (first["ip"], first["port"], first["chain"])),
                                    ("last", (last["ip"], last["port"], last["chain"]))):
            w = lib.walk(view, ip, port)
            e[t] = dict(walked=w["walked"], depth=len(w["chains"]), ip=ip, port=port)
            if w["target"] != want:
                self.bug("dataplane %s: a packet to %s:%d ends in %s, not %s (walked %s)"
                         % (key, ip, port, w["target"], want, " -> ".join(w["chains"])))
                continue
            legs.append((t, c, ip, port))
        m = self.dp_window(legs, n)
        b = m.pop("baseline")
        res["baseline"][be]["windows"].append(b)
        e["baseline_rate"] = b["rate"]
        for t, x in m.items():
            e[t].update(x)
            e[t]["ratio"] = x["rate"] / b["rate"] if b["rate"] else None
        res["groups"][key] = e
        self.dp_log(key, e, b)
        return e

    def dp_log(self, key, e, b):
        log("dataplane %-18s %s; baseline %s/s" % (key, " ".join(
            "%s=%s/s (%.2fx, p50 %.0fus, %d rules)" % (t, fmt_n(e[t]["rate"]), e[t]["ratio"], e[t]["p50"],
                                                     e[t]["walked"]) for t in ("plain", "first", "last", "noext")
            if t in e and "rate" in e[t]), fmt_n(b["rate"])))

    FILTER_DISPATCH = ("KUBE-EXTERNAL-SERVICES", "KUBE-SERVICES", "KUBE-PROXY-FIREWALL")

    def dp_noext(self, be, n, node, bc, c, e, refill):
        """Diagnostic at the biggest size, tree layout: what the filter table's dispatch
        chains still cost. (a) filter KUBE-EXTERNAL-SERVICES (and its tree) emptied: every new
        connection the node forwards that is not masqueraded service traffic (accepted
        earlier by KUBE-FORWARD) walks it; it holds upstream's DROP rules for services without
        (local) endpoints, the NodePort ones with `-m addrtype --dst-type LOCAL` (a route
        lookup each). (b) filter KUBE-SERVICES and KUBE-PROXY-FIREWALL emptied too (-d rules
        for services without endpoints and LB source ranges; the firewall chain is walked by
        every new connection): what is left is nat's own cost. Put back afterwards when the
        namespace is measured again."""
        tc = ["iptables-%s" % be, "-w", "600", "-t", "filter"]
        filt = self.dump_dispatch(n, e["layout"]).get("filter", {})
        ext = {ch: filt.get(ch, []) for ch in self.FILTER_DISPATCH}

        def reach(ch, seen):
            """The rules a packet can walk from ch: its own and its tree's."""
            out = []
            for l in filt.get(ch, []):
                out.append(l)
                m = re.search(r" -j (KUBE-\S+)", l)
                if m and m.group(1) in filt and m.group(1) not in seen and m.group(1) not in self.FILTER_DISPATCH:
                    seen.add(m.group(1))
                    out += reach(m.group(1), seen)
            return out
        walked = {ch: reach(ch, set()) for ch in self.FILTER_DISPATCH}
        node.run(tc + ["-F", "KUBE-EXTERNAL-SERVICES"])
        m = self.dp_window([("baseline", bc) + self.DP_PLAIN, ("plain", c) + self.DP_PLAIN], n)
        b = m.pop("baseline")
        x = m["plain"]
        x["ratio"] = x["rate"] / b["rate"] if b["rate"] else None
        x["rules"] = len(walked["KUBE-EXTERNAL-SERVICES"])
        x["addrtype"] = sum(1 for l in walked["KUBE-EXTERNAL-SERVICES"] if "--dst-type LOCAL" in l)
        e["noext"] = x
        for ch in self.FILTER_DISPATCH[1:]:
            node.run(tc + ["-F", ch])
        legs = [("baseline", bc) + self.DP_PLAIN, ("plain", c) + self.DP_PLAIN]
        legs += [(t, c, e[t]["ip"], e[t]["port"]) for t in ("first", "last") if "rate" in e[t]]
        m = self.dp_window(legs, n)
        b = m.pop("baseline")
        for x in m.values():
            x["ratio"] = x["rate"] / b["rate"] if b["rate"] else None
        e["nofilter"] = dict(m, rules={ch: len(v) for ch, v in walked.items()})
        if refill:
            self.restore_txns(node, be, ["*filter\n" + "".join(":%s - [0:0]\n" % ch for ch in ext) +
                                         "".join(l for v in ext.values() for l in v) + "COMMIT\n"])
        log("dataplane %s-%d-tree, filter KUBE-EXTERNAL-SERVICES (%d rules, %d addrtype LOCAL) emptied: plain "
            "%.2fx; also filter KUBE-SERVICES (%d) and KUBE-PROXY-FIREWALL (%d) emptied: %s" % (
                be, n, e["noext"]["rules"], e["noext"]["addrtype"], e["noext"]["ratio"],
                len(walked["KUBE-SERVICES"]), len(walked["KUBE-PROXY-FIREWALL"]),
                " ".join("%s %.2fx" % (t, x["ratio"]) for t, x in m.items())))

    # ---- nft transaction size --------------------------------------------------------

    @staticmethod
    def split_payload(path, per_txn):
        """The --dump-rules payload cut as the daemon cuts a full nft sync (rules/diff.c):
        KUBE-MARK-MASQ first, then the service ports' own chains per_txn ports at a time,
        then (tree layout) the KUBE-CIP chains, children first, in transactions of about
        4000 rules (TREE_TXN_RULES), then filter + the nat dispatch chains in one last
        transaction."""
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
        cip_order = [l[1:].split()[0] for l in nat["decl"] if l[1:].startswith(lib.CIP_PFX)]
        fixed_decl = [l for l in nat["decl"] if not l[1:].split()[0].startswith(own_pfx + (lib.CIP_PFX,))]
        fixed_rules = []
        for l in nat["rules"]:
            chain = l.split()[1]
            if chain.startswith(lib.CIP_PFX):
                rules_of.setdefault(chain, []).append(l)
            elif chain in parent:
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
        decl, body, n_own = [], [], len(txns)
        for i, c in enumerate(cip_order):
            decl.append(":%s - [0:0]\n" % c)
            body += rules_of.get(c, [])
            if len(body) >= 4000 or i == len(cip_order) - 1:
                txns.append("*nat\n" + "".join(decl + body) + "COMMIT\n")
                decl, body = [], []
        last = ""
        if "filter" in sections:
            last += "*filter\n" + "".join(sections["filter"]["decl"]) + \
                "".join(sections["filter"]["rules"]) + "COMMIT\n"
        last += "*nat\n" + "".join(fixed_decl) + "".join(fixed_rules) + "COMMIT\n"
        txns.append(last)
        return txns, len(gorder), len(txns) - 1 - n_own

    def phase_txn(self):
        n = self.cfg["txn_size"]
        res = {"services": n, "sizes": {}, "layout": self.layout(n)}
        split = {}
        for k in self.cfg["txn_sizes"]:
            split[k], ports, ncip = self.split_payload(self.dump(n), k)
        res["ports"] = ports
        times = {k: [] for k in split}
        for r in range(self.cfg["txn_runs"]):
            for k, txns in split.items():
                ns = lib.Netns("txn", big=n >= 2000)
                try:
                    self.prep_ns(ns)
                    lib.settle()

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
                # the MARK-MASQ transaction first, then the ports' chains, the tree chains
                # (tree layout), filter + dispatch last
                blocks = per[1:len(per) - 1 - ncip]
                full_blocks = blocks if ports % k == 0 else blocks[:-1]
                times[k].append(dict(total=total, n=len(txns), first=full_blocks[0] if full_blocks else None,
                                     last_own=full_blocks[-1] if full_blocks else None, final=per[-1],
                                     blocks=sum(blocks), tree=sum(per[len(per) - 1 - ncip:-1]),
                                     n_tree=ncip))
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
        self.res["auto_ports"] = auto_ports()
        self.res["started"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        self.res["load_start"] = loadavg()
        for ph in PHASES:
            if ph not in self.phases:
                continue
            t = time.time()
            log("== phase", ph)
            getattr(self, "phase_" + ph)()
            self.res.setdefault("phase_seconds", {})[ph] = time.time() - t
        self.res["seconds"] = time.time() - t0
        self.res["load_end"] = loadavg()


def auto_ports():
    """RULES_DISPATCH_AUTO_PORTS of the source tree (rules/model.h): auto's threshold."""
    try:
        with open(os.path.join(lib.REPO, "rules", "model.h")) as f:
            m = re.search(r"#define RULES_DISPATCH_AUTO_PORTS\s+(\d+)", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


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
