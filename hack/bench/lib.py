"""Plumbing for the benchmarks: throwaway network namespaces, the test API
server and the daemon inside them, log parsing, process statistics.

Everything that touches the kernel runs inside namespaces made here. They are
deleted on every exit path: processes started in a namespace are killed by pid
first (they would survive `ip netns del`), then the namespace goes. Names start
with PREFIX (kipb-<pid>-), so hack/bench.sh's trap can find leftovers of a
driver that was killed outright.
"""

import ctypes
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(REPO, "test", "apiserver"))

import admin as kadmin  # noqa: E402  (the test API server's admin client)

PY = "/usr/bin/python3"
BIN = os.environ.get("KIP_BIN", os.path.join(REPO, "_output", "bin", "kube-iptables-proxy"))
APISERVER = os.path.join(REPO, "test", "apiserver", "apiserver.py")
PREFIX = "kipb-%d-" % os.getpid()
CLONE_NEWNET = 0x40000000
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
_libc = ctypes.CDLL("libc.so.6", use_errno=True)

NODE = "node-a"
CLUSTER_CIDR = "10.244.0.0/16"
DAEMON_FLAGS = [
    "--hostname-override", NODE, "--cluster-cidr", CLUSTER_CIDR, "--ip-family", "ipv4",
    "--conntrack-max-per-core=0", "--iptables-min-sync-period", "1s",
    "--iptables-sync-period", "30s", "--metrics-bind-address", "127.0.0.1:10249",
    "--healthz-bind-address", "127.0.0.1:10256", "-v", "2",
]
DUMP_FLAGS = ["--hostname-override", NODE, "--cluster-cidr", CLUSTER_CIDR, "--ip-family", "ipv4"]
RESTORE_ARGS = {  # exactly what the daemon runs (proxy/iptables.c)
    "nft": ["iptables-nft-restore", "-w", "5", "-W", "100000", "--noflush", "--counters"],
    "legacy": ["iptables-legacy-restore", "-w", "5", "--noflush", "--counters"],
}


def log(*a):
    print("[bench %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def run(cmd, check=True, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s exited %d: %s%s" % (" ".join(cmd), p.returncode,
                                                   p.stdout[-2000:], p.stderr[-2000:]))
    return p


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---- namespaces ---------------------------------------------------------------

class Netns:
    """A named network namespace with lo up; delete() kills what was started in it."""

    live = []
    _seq = 0
    cleanup_pending = False  # a namespace with big tables was deleted: see settle()

    def __init__(self, tag, big=False):
        """big: it will hold the rules of thousands of services (settle() waits for the
        kernel to free them after delete())."""
        Netns._seq += 1
        self.big = big
        self.name = "%s%s%d" % (PREFIX, tag, Netns._seq)
        run(["ip", "netns", "add", self.name])
        Netns.live.append(self)
        self.procs = []
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def argv(self, a):
        return ["ip", "netns", "exec", self.name] + list(a)

    def run(self, a, check=True, **kw):
        return run(self.argv(a), check=check, **kw)

    def popen(self, a, **kw):
        # `ip netns exec` execs the command: the pid is the command's own
        p = subprocess.Popen(self.argv(a), **kw)
        self.procs.append(p)
        return p

    def _enter(self):
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns " + self.name)
        finally:
            os.close(fd)

    def call(self, fn, *args, **kw):
        """fn(*args) in a thread that entered this namespace (its sockets live here)."""
        box = {}

        def body():
            try:
                self._enter()
                box["ret"] = fn(*args, **kw)
            except BaseException as e:  # re-raised in the caller
                box["err"] = e

        t = threading.Thread(target=body, daemon=True)
        t.start()
        t.join()
        if "err" in box:
            raise box["err"]
        return box.get("ret")

    def thread(self, fn, *args):
        """Start fn(*args) in a daemon thread inside this namespace; returns the thread."""
        def body():
            self._enter()
            fn(*args)
        t = threading.Thread(target=body, daemon=True)
        t.start()
        return t

    def delete(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        # children the daemon spawned (iptables-restore) live here too
        r = run(["ip", "netns", "pids", self.name], check=False)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        run(["ip", "netns", "del", self.name], check=False)
        if self.big:
            Netns.cleanup_pending = True
        if self in Netns.live:
            Netns.live.remove(self)

    @classmethod
    def delete_all(cls):
        for ns in list(cls.live):
            ns.delete()


def _cpu_busy():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4], sum(v)  # all but idle and iowait, total


def settle(limit=0.3, timeout=20.0):
    """Before a timed measurement: when a namespace with big tables was deleted, wait until
    the CPUs are idle again. `ip netns del` returns at once and the kernel frees the tables
    in the background: half a second of one core for 10k services' nft rules, three seconds
    for legacy's, more at 20k, enough to slow down whatever is measured next. Idle: busy
    below limit (of all CPUs) over two samples of 0.1 s. Returns the seconds waited."""
    if not Netns.cleanup_pending:
        return 0.0
    t0 = time.time()
    prev, ok = _cpu_busy(), 0
    while time.time() - t0 < timeout:
        time.sleep(0.1)
        cur = _cpu_busy()
        frac = (cur[0] - prev[0]) / max(1, cur[1] - prev[1])
        prev = cur
        ok = ok + 1 if frac < limit else 0
        if ok >= 2:
            break
    Netns.cleanup_pending = False
    waited = time.time() - t0
    if waited > 1:
        log("waited %.1f s for the kernel to free a deleted namespace's tables" % waited)
    return waited


# ---- processes ------------------------------------------------------------------

def proc_status(pid):
    """VmRSS and VmHWM in bytes."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":")
                    out[k] = int(v.split()[0]) * 1024
    except FileNotFoundError:
        pass
    return out


def proc_cpu(pid):
    """(own CPU seconds, CPU seconds of waited-for children) from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ut, st, cut, cst = (int(x) for x in fields[11:15])
    return (ut + st) / CLK_TCK, (cut + cst) / CLK_TCK


# ---- the test API server -----------------------------------------------------------

class ApiServer:
    def __init__(self, ns, fixture, logpath):
        self.ns = ns
        self.port_file = os.path.join(os.path.dirname(logpath), "port-%s" % ns.name)
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.logf = open(logpath, "w")
        argv = [PY, APISERVER, "--port", "0", "--port-file", self.port_file,
                "--chunking", "event", "--bookmark-interval", "60", "--history", "200000"]
        if fixture:
            argv += ["--fixture", fixture]
        self.proc = ns.popen(argv, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while not os.path.exists(self.port_file):
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("test API server did not start; see " + logpath)
            time.sleep(0.05)
        with open(self.port_file) as f:
            self.port = int(f.read())
        os.unlink(self.port_file)
        self.url = "http://127.0.0.1:%d" % self.port
        self.admin = kadmin.Admin(self.url)

    def apply(self, obj):
        """Create/replace one object (from inside the namespace). Returns the wall times
        just before the request was sent and just after the answer came back: the watch
        event is queued in between (the server queues it before it answers)."""
        def go():
            t0 = time.time()
            self.admin.apply(obj)
            return t0, time.time()
        return self.ns.call(go)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.logf.close()


# ---- the daemon ------------------------------------------------------------------

LOG_RE = re.compile(r'^([IWEF])(\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\s+\d+ (\S+)\] "([^"]*)"(.*)$')
KV_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def parse_line(line):
    m = LOG_RE.match(line)
    if not m:
        return None
    sev, mon, day, hh, mm, ss, us, src, msg, rest = m.groups()
    lt = time.localtime()
    year = lt.tm_year - (1 if int(mon) > lt.tm_mon else 0)  # a run over New Year
    ts = time.mktime((year, int(mon), int(day), int(hh), int(mm), int(ss), 0, 0, -1)) + int(us) / 1e6
    kv = {}
    for k, v in KV_RE.findall(rest):
        kv[k] = v[1:-1] if v.startswith('"') else v
    return {"sev": sev, "ts": ts, "src": src, "msg": msg, "kv": kv, "line": line}


class Daemon:
    def __init__(self, ns, api_url, backend, logpath, extra=(), shim=None):
        """shim: a directory of iptwrap links put first on the daemon's PATH; every
        iptables tool the daemon runs is then timed into logpath + ".ipt"."""
        self.ns = ns
        self.backend = backend
        self.logpath = logpath
        self.logf = open(logpath, "w")
        env = None
        self.iptlog = None
        if shim:
            self.iptlog = logpath + ".ipt"
            if os.path.exists(self.iptlog):
                os.unlink(self.iptlog)
            env = dict(os.environ, PATH=shim + ":" + os.environ.get("PATH", "/usr/sbin:/usr/bin"),
                       KIPB_IPTLOG=self.iptlog)
        argv = [BIN, "--master", api_url, "--iptables-backend", backend] + DAEMON_FLAGS + list(extra)
        self.t_start = time.time()
        self.proc = ns.popen(argv, stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        self.pid = self.proc.pid
        self._off = 0
        self._buf = ""
        self.lines = []  # parsed lines, in order

    def poll_log(self):
        with open(self.logpath) as f:
            f.seek(self._off)
            data = f.read()
            self._off = f.tell()
        self._buf += data
        *complete, self._buf = self._buf.split("\n")
        for line in complete:
            p = parse_line(line)
            if p:
                self.lines.append(p)
        return len(self.lines)

    def mark(self):
        return self.poll_log()

    def wait_for(self, pred, start=0, timeout=60.0, interval=0.005):
        """The first parsed line at index >= start with pred(line); polls the log."""
        deadline = time.time() + timeout
        i = start
        while True:
            self.poll_log()
            while i < len(self.lines):
                if pred(self.lines[i]):
                    return self.lines[i], i
                i += 1
            if self.proc.poll() is not None:
                raise RuntimeError("daemon exited %s; see %s" % (self.proc.returncode, self.logpath))
            if time.time() > deadline:
                raise TimeoutError("daemon: condition not met within %.0fs; see %s"
                                   % (timeout, self.logpath))
            time.sleep(interval)

    def wait_sync(self, start=0, timeout=60.0, full=None):
        def pred(l):
            if l["msg"] == "Sync failed":
                raise RuntimeError("daemon: Sync failed: %s (%s)" % (l["kv"].get("err"), self.logpath))
            return l["msg"] == "SyncProxyRules complete" and (
                full is None or l["kv"].get("fullSync") == ("true" if full else "false"))
        return self.wait_for(pred, start, timeout)

    def syncs(self, start=0):
        return [l for l in self.lines[start:] if l["msg"] == "SyncProxyRules complete"]

    def problems(self, start=0):
        return [l for l in self.lines[start:] if l["sev"] in ("E", "F") or l["msg"] == "Sync failed"]

    def rss(self):
        return proc_status(self.pid)

    def ipt_calls(self):
        """[(start, seconds, tool, exit, args)] of the iptables tools run so far (shim)."""
        out = []
        if not self.iptlog or not os.path.exists(self.iptlog):
            return out
        with open(self.iptlog) as f:
            for line in f:
                p = line.split()
                if len(p) >= 4:
                    out.append((int(p[0]) / 1e9, float(p[2]), p[1], int(p[3]), p[4:]))
        return out

    def breakdown(self, line):
        """Where a sync's time went: iptables tools (wall time they ran, overlaps counted
        once) vs the rest (the daemon itself), from the shim's log."""
        elapsed = float(line["kv"]["elapsed"].rstrip("s"))
        t1 = line["ts"] + 0.002
        t0 = line["ts"] - elapsed - 0.002
        calls = [c for c in self.ipt_calls() if t0 <= c[0] <= t1]
        restores = [c for c in calls if c[2].endswith("-restore")]
        saves = [c for c in calls if c[2].endswith("-save")]
        return dict(elapsed=elapsed, iptables=union(calls), restore=union(restores),
                    save=union(saves), n_restore=len(restores),
                    restore_times=[round(c[1], 4) for c in restores],
                    own=max(0.0, elapsed - union(calls)))

    def stop(self, timeout=30):
        """SIGTERM; returns (exit code, seconds to exit)."""
        t = time.time()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None, timeout
        self.logf.close()
        return self.proc.returncode, time.time() - t


def union(calls):
    """Total time covered by [start, start + seconds) intervals."""
    iv = sorted((c[0], c[0] + c[1]) for c in calls)
    tot, cur_s, cur_e = 0.0, None, None
    for s, e in iv:
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                tot += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        tot += cur_e - cur_s
    return tot


# ---- formatting ------------------------------------------------------------------

def fmt_s(x, digits=None):
    if x is None:
        return "–"
    if digits is not None:
        return "%.*f s" % (digits, x)
    if x >= 100:
        return "%.0f s" % x
    if x >= 10:
        return "%.1f s" % x
    if x >= 1:
        return "%.2f s" % x
    return "%.0f ms" % (x * 1000) if x >= 0.01 else "%.1f ms" % (x * 1000)


def fmt_b(x):
    if x is None:
        return "–"
    for unit, div in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if x >= div:
            v = x / div
            return ("%.1f %s" if v < 100 else "%.0f %s") % (v, unit)
    return "%d B" % x


def fmt_n(x):
    if x is None:
        return "–"
    return "{:,}".format(int(round(x)))


def load_json(path):
    with open(path) as f:
        return json.load(f)


# ---- the nat table as the kernel holds it, and a packet's walk through it ----------------

# The jump rules a full sync ensures in the built-in chains (rules/diff.c `jumps`, in that
# order, each inserted at the top). --dump-rules does not print them: a payload restored by
# hand needs them appended to behave like the daemon's rules.
JUMPS = [
    ("filter", "INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible '
                        'service portals" -j KUBE-EXTERNAL-SERVICES'),
    ("filter", "FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible '
                          'service portals" -j KUBE-EXTERNAL-SERVICES'),
    ("filter", "INPUT", '-m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS'),
    ("filter", "FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                          '-j KUBE-SERVICES'),
    ("filter", "OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
                         '-j KUBE-SERVICES'),
    ("filter", "FORWARD", '-m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD'),
    ("filter", "INPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
                        'firewall" -j KUBE-PROXY-FIREWALL'),
    ("filter", "OUTPUT", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
                         'firewall" -j KUBE-PROXY-FIREWALL'),
    ("filter", "FORWARD", '-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
                          'firewall" -j KUBE-PROXY-FIREWALL'),
    ("nat", "OUTPUT", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("nat", "PREROUTING", '-m comment --comment "kubernetes service portals" -j KUBE-SERVICES'),
    ("nat", "POSTROUTING", '-m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING'),
    ("filter", "INPUT", "-j KUBE-FIREWALL"),
    ("filter", "OUTPUT", "-j KUBE-FIREWALL"),
]
NFACCT = ["ct_state_invalid_dropped_pkts", "localhost_nps_accepted_pkts"]  # cmd/daemon.c
CIP_PFX = "KUBE-CIP-"  # the tree layout's chains (rules/dispatch.h)
_COMMENT_RE = re.compile(r'-m comment --comment ("(?:[^"\\]|\\.)*"|\S+) ?')


def dispatch_chains(lines):
    """{chain: [rule spec]} of nat KUBE-SERVICES and the KUBE-CIP chains, from the "*nat"
    section of iptables-save or --dump-rules text (other tables and chains skipped), in order."""
    out = {}
    nat = False
    for l in lines:
        if l.startswith("*"):
            nat = l.startswith("*nat")
        elif nat and (l.startswith("-A KUBE-SERVICES ") or l.startswith("-A " + CIP_PFX)):
            chain, spec = l[3:].rstrip("\n").split(" ", 1)
            out.setdefault(chain, []).append(spec)
    return out


def layout_of(chains):
    """'tree' when KUBE-SERVICES jumps to KUBE-CIP chains, else 'linear'."""
    return "tree" if any(" -j " + CIP_PFX in r for r in chains.get("KUBE-SERVICES", [])) else "linear"


class NatView:
    """nat KUBE-SERVICES and the KUBE-CIP chains as the kernel holds them, read on demand:
    iptables-nft lists one chain without reading the rest (cheap at any size); legacy always
    reads the whole table, so it is read once."""

    def __init__(self, ns, backend):
        self.ns, self.backend = ns, backend
        self.chains = None
        if backend == "legacy":
            txt = ns.run(["iptables-legacy-save", "-t", "nat"]).stdout
            self.chains = dispatch_chains(txt.splitlines())

    def chain(self, name):
        if self.chains is not None:
            return self.chains.get(name, [])
        if not hasattr(self, "_cache"):
            self._cache = {}
        if name not in self._cache:
            p = self.ns.run(["iptables-nft", "-w", "5", "-t", "nat", "-S", name], check=False)
            self._cache[name] = [l[3:].split(" ", 1)[1] for l in p.stdout.splitlines()
                                 if l.startswith("-A ")] if p.returncode == 0 else []
        return self._cache[name]

    def layout(self):
        return layout_of({"KUBE-SERVICES": self.chain("KUBE-SERVICES")})


def _ip4(s):
    a, _, ln = s.partition("/")
    p = [int(x) for x in a.split(".")]
    return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3], int(ln) if ln else 32


def rule_match(spec):
    """(dst value, prefix len, proto, dport, target, other) of one KUBE-SERVICES/KUBE-CIP rule
    spec; other: matches the walk cannot evaluate (a negation, addrtype, ...)."""
    toks = _COMMENT_RE.sub("", spec).split()
    dst = plen = proto = dport = target = None
    other = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "!":
            other.append(" ".join(toks[i:i + 3]))
            i += 3
            continue
        if t == "-d" and i + 1 < len(toks) and ":" not in toks[i + 1]:
            dst, plen = _ip4(toks[i + 1])
            i += 2
        elif t == "-p":
            proto = toks[i + 1]
            i += 2
        elif t == "--dport":
            dport = int(toks[i + 1])
            i += 2
        elif t == "-j":
            target = toks[i + 1]
            i += 2
        elif t == "-m" and toks[i + 1] in ("tcp", "udp", "sctp"):
            i += 2
        else:
            other.append(t)
            i += 1
    return dst, plen, proto, dport, target, other


def walk(view, ip, port, proto="tcp"):
    """The path of the first packet of a connection to ip:port through nat KUBE-SERVICES, as
    iptables evaluates it: {'target': the chain or verdict it ends in (None: fell through),
    'walked': rules evaluated, 'chains': the chains entered}. Rules with matches it cannot
    evaluate (the NodePort jump's addrtype LOCAL) count as walked and not taken: every
    destination here is a remote address."""
    a, _ = _ip4(ip)
    out = {"walked": 0, "chains": [], "target": None}

    def go(chain, depth):
        out["chains"].append(chain)
        for spec in view.chain(chain):
            out["walked"] += 1
            dst, plen, pr, dp, target, other = rule_match(spec)
            if other:
                continue
            if dst is not None and plen and (a ^ dst) >> (32 - plen):
                continue
            if pr is not None and pr != proto:
                continue
            if dp is not None and dp != port:
                continue
            if target and target.startswith(CIP_PFX) and depth < 16:
                if go(target, depth + 1):
                    return True
                continue
            out["target"] = target
            return True
        return False
    go("KUBE-SERVICES", 0)
    return out


def ip4_str(v):
    return "%d.%d.%d.%d" % (v >> 24, (v >> 16) & 255, (v >> 8) & 255, v & 255)
