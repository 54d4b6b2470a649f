#!/usr/bin/python3
"""The checks of hack/deploy (manifests, image recipe, docs). test/deploy/run.sh
runs each one as `checks.py NAME`; `checks.py list` names them.

Exit status: 0 ok, 1 failed (the reasons on stdout), 77 skipped (the reason on
stdout). No network, no cluster: kubectl talks to the project's test API server
on loopback. Python 3 standard library plus python3-yaml.
"""
import copy
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in hack/deploy or test/
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(ROOT, "hack", "deploy")
sys.path.insert(0, HERE)
sys.path.insert(0, DEPLOY)
import generate  # noqa: E402  hack/deploy/generate.py: --help/--man parsing, section markers
import k8s_schema  # noqa: E402

BIN = generate.BIN
PY = "/usr/bin/python3"
SKIP = 77

NAMESPACE = "kube-system"
NAME = "kube-iptables-proxy"
INSTALL_PATH = "/usr/local/bin/kube-iptables-proxy"
CONFIGMAP = "kube-proxy"
CONFIG_DIR = "/var/lib/kube-proxy"
HANDOVER_LABEL = "kube-iptables-proxy/enabled"
# The least-privilege set: (apiGroup, resource, verb), nothing more, nothing less.
RBAC = {
    ("", "services", "list"), ("", "services", "watch"),
    ("discovery.k8s.io", "endpointslices", "list"),
    ("discovery.k8s.io", "endpointslices", "watch"),
    ("", "nodes", "get"), ("", "nodes", "list"), ("", "nodes", "watch"),
    ("", "events", "create"), ("", "events", "patch"),
}
# Programs the binary runs (proxy/iptables.c names them "<ip|ip6>tables-<backend><suffix>").
EXECS = [f"{ip}tables-{be}{sfx}" for ip in ("ip", "ip6") for be in ("nft", "legacy")
         for sfx in ("", "-save", "-restore")]
# Packages a runtime image must never carry.
BUILD_ONLY = re.compile(r"^(build-essential|gcc|gcc-\d+|g\+\+(-\d+)?|cpp(-\d+)?|clang.*|"
                        r"make|pkg-config|pkgconf|binutils.*|.*-dev)$")


class Skip(Exception):
    pass


CHECKS = {}


def check(name):
    def deco(fn):
        CHECKS[name] = fn
        return fn
    return deco


# ---- helpers ------------------------------------------------------------------


def rel(path):
    return os.path.relpath(path, ROOT)


def load_docs(path):
    with open(path, encoding="utf-8") as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def parts():
    with open(os.path.join(DEPLOY, "kustomization.yaml"), encoding="utf-8") as fh:
        return [os.path.join(DEPLOY, p) for p in yaml.safe_load(fh)["resources"]]


def manifest_files():
    """Every Kubernetes manifest of hack/deploy: the parts, install.yaml, the examples."""
    ex = os.path.join(DEPLOY, "examples")
    return parts() + [os.path.join(DEPLOY, "install.yaml")] + \
        sorted(os.path.join(ex, f) for f in os.listdir(ex) if f.endswith(".yaml"))


def installed():
    """{(kind, name): doc} of install.yaml."""
    return {(d["kind"], d["metadata"]["name"]): d
            for d in load_docs(os.path.join(DEPLOY, "install.yaml"))}


def need_bin():
    if not os.access(BIN, os.X_OK):
        raise Skip(f"{rel(BIN)} is not built (run make)")


def kubectl():
    k = shutil.which("kubectl")
    if not k:
        raise Skip("kubectl is not installed")
    return k


def section_text():
    """The part of README.md these checks hold to the binary and the manifests:
    the reference tables and the deployment guide, between the deploy-section
    markers. Returns (path, text)."""
    path = generate.README
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    b, e = text.find(generate.SECTION_BEGIN), text.find(generate.SECTION_END)
    if b < 0 or e < b:
        raise AssertionError(f"{rel(path)}: no section between the markers "
                             f"{generate.SECTION_BEGIN} ... {generate.SECTION_END}")
    return path, text[b:e]


def containerfile_stages():
    """[(from-line, [instructions with continuations joined])] of the Containerfile."""
    with open(os.path.join(DEPLOY, "Containerfile"), encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    instrs, cur = [], ""
    for line in lines:
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if cur and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        cur += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            instrs.append(cur.strip())
            cur = ""
    stages = []
    for ins in instrs:
        if ins.upper().startswith("FROM "):
            stages.append((ins, []))
        elif stages:
            stages[-1][1].append(ins)
    return stages


def apt_packages(instructions):
    pkgs = []
    for ins in instructions:
        if not ins.upper().startswith("RUN "):
            continue
        for seg in re.split(r"&&|;|\|\|", ins[4:]):
            toks = seg.split()
            if "apt-get" in toks and "install" in toks:
                pkgs += [t for t in toks[toks.index("install") + 1:] if not t.startswith("-")]
    return pkgs


def dpkg_owners(paths):
    """{path: the Debian package that ships it (or None)}, in one dpkg -S call.
    Debian 12 merges /lib into /usr/lib: dpkg knows a file by one of the two."""
    variants = {}
    for p in paths:
        cands = {p, os.path.realpath(p)}
        for c in list(cands):
            if c.startswith("/usr/lib/"):
                cands.add(c[4:])
            elif c.startswith("/lib/"):
                cands.add("/usr" + c)
        variants[p] = cands
    r = subprocess.run(["dpkg", "-S", *sorted(set().union(*variants.values()))],
                       capture_output=True, text=True)
    owner = {}
    for line in r.stdout.splitlines():
        pkgs, _, path = line.partition(": ")
        if path:
            owner[path.strip()] = pkgs.split(",")[0].split(":")[0].strip()
    return {p: next((owner[c] for c in sorted(cs) if c in owner), None)
            for p, cs in variants.items()}


def dpkg_owner(path):
    return dpkg_owners([path])[path]


def dpkg_depends_closure(roots):
    """Installed packages reachable from @roots through Depends/Pre-Depends
    (alternatives: every installed one), from the local dpkg database."""
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Depends}, ${Pre-Depends}\t"
                        "${Provides}\n"], capture_output=True, text=True, check=True)
    deps, provides = {}, {}
    for line in r.stdout.splitlines():
        pkg, dep, prov = (line.split("\t") + ["", ""])[:3]
        names = set()
        for alt in dep.split(","):
            for a in alt.split("|"):
                a = a.strip().split(" ")[0].split(":")[0]
                if a:
                    names.add(a)
        deps[pkg] = names
        for p in prov.split(","):
            p = p.strip().split(" ")[0]
            if p:
                provides.setdefault(p, set()).add(pkg)
    seen, todo = set(), list(roots)
    while todo:
        p = todo.pop()
        for q in provides.get(p, {p}) | ({p} if p in deps else set()):
            if q in seen or q not in deps:
                continue
            seen.add(q)
            todo += list(deps[q])
    return seen


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


# ---- manifests ---------------------------------------------------------------------


@check("generated")
def check_generated():
    """install.yaml, the image tags and the README tables are what generate.py makes."""
    need_bin()
    r = run([PY, os.path.join(DEPLOY, "generate.py"), "--check"])
    return [] if r.returncode == 0 else [r.stdout + r.stderr]


def canon(docs):
    return sorted((json.dumps(d, sort_keys=True) for d in docs))


@check("kustomize")
def check_kustomize():
    """`kubectl kustomize hack/deploy` builds the same objects as install.yaml."""
    r = run([kubectl(), "kustomize", DEPLOY])
    if r.returncode != 0:
        return [f"kubectl kustomize: {r.stderr.strip()}"]
    built = [d for d in yaml.safe_load_all(r.stdout) if d]
    if canon(built) != canon(load_docs(os.path.join(DEPLOY, "install.yaml"))):
        return ["kubectl kustomize hack/deploy and install.yaml differ: run "
                "hack/deploy/generate.py, and keep kustomization.yaml free of transformers"]
    return []


class TestApiServer:
    """test/deploy/kapi.py on an ephemeral loopback port, and a kubeconfig for it."""

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="kip-deploy-")
        port_file = os.path.join(self.tmp, "port")
        self.log = open(os.path.join(self.tmp, "apiserver.log"), "w")
        self.proc = subprocess.Popen([PY, os.path.join(HERE, "kapi.py"), "--port", "0",
                                      "--port-file", port_file, "-v", "1"],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise AssertionError("the test API server did not start")
            time.sleep(0.05)
        with open(port_file) as fh:
            self.port = int(fh.read())
        self.kubeconfig = os.path.join(self.tmp, "kubeconfig")
        with open(self.kubeconfig, "w") as fh:
            yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "t",
                            "clusters": [{"name": "t", "cluster": {
                                "server": f"http://127.0.0.1:{self.port}"}}],
                            "contexts": [{"name": "t", "context": {"cluster": "t",
                                                                   "user": "t"}}],
                            "users": [{"name": "t", "user": {}}]}, fh)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def kubectl_name(doc):
    """What `kubectl -o name` prints for @doc: kind[.group]/name."""
    group = doc["apiVersion"].rpartition("/")[0]
    return f"{doc['kind'].lower()}{'.' + group if group else ''}/{doc['metadata']['name']}"


@check("kubectl-dry-run")
def check_kubectl_dry_run():
    """kubectl apply --dry-run=client --validate=false of every manifest, and -k."""
    k = kubectl()
    errs = []
    with TestApiServer() as api:
        env = dict(os.environ, KUBECONFIG=api.kubeconfig, HOME=api.tmp)
        runs = [(["-f", f], load_docs(f)) for f in manifest_files()]
        runs.append((["-k", DEPLOY], load_docs(os.path.join(DEPLOY, "install.yaml"))))
        for args, docs in runs:
            r = run([k, "apply", "--dry-run=client", "--validate=false", "-o", "name", *args],
                    env=env)
            if r.returncode != 0:
                errs.append(f"kubectl apply {' '.join(args)}: exit {r.returncode}: "
                            f"{r.stderr.strip()}")
                continue
            got = sorted(r.stdout.split())
            want = sorted(kubectl_name(d) for d in docs)
            if got != want:
                errs.append(f"kubectl apply {' '.join(args)}: printed {got}, want {want}")
    return errs


@check("schema")
def check_schema():
    """Every field of every manifest exists for its kind and version, with its type."""
    errs = []
    files = manifest_files() + [os.path.join(DEPLOY, "kustomization.yaml")]
    for f in files:
        for i, d in enumerate(load_docs(f)):
            errs += [f"{rel(f)}#{i}: {e}" for e in k8s_schema.validate(d)]
    return errs


def rbac_errors(objs):
    """What is wrong with the ClusterRole and its binding in @objs {(kind, name): doc}."""
    errs = []
    role = objs.get(("ClusterRole", NAME))
    binding = objs.get(("ClusterRoleBinding", NAME))
    sa = objs.get(("ServiceAccount", NAME))
    if not role or not binding or not sa:
        return [f"want ServiceAccount, ClusterRole and ClusterRoleBinding named {NAME}"]
    got = set()
    for i, rule in enumerate(role.get("rules", [])):
        for k in ("resourceNames", "nonResourceURLs"):
            if k in rule:
                errs.append(f"ClusterRole rule {i}: {k} is not wanted")
        for g in rule.get("apiGroups", []):
            for res in rule.get("resources", []):
                for v in rule.get("verbs", []):
                    if "*" in (g, res, v):
                        errs.append(f"ClusterRole rule {i}: wildcard in {g!r} {res!r} {v!r}")
                    got.add((g, res, v))
    for t in sorted(got - RBAC):
        errs.append(f"ClusterRole grants {t}, which the proxy does not need")
    for t in sorted(RBAC - got):
        errs.append(f"ClusterRole lacks {t}, which the proxy needs")
    if "aggregationRule" in role:
        errs.append("ClusterRole: no aggregationRule wanted")
    kinds = [(d["kind"], n) for (k, n), d in objs.items() if k in ("Role", "RoleBinding")]
    if kinds:
        errs.append(f"unexpected namespaced RBAC objects: {kinds}")
    for (k, n), d in objs.items():
        if k == "ClusterRole" and n != NAME or k == "ClusterRoleBinding" and n != NAME:
            errs.append(f"unexpected {k} {n}")
    if binding.get("roleRef") != {"apiGroup": "rbac.authorization.k8s.io",
                                  "kind": "ClusterRole", "name": NAME}:
        errs.append(f"ClusterRoleBinding roleRef is {binding.get('roleRef')}")
    if binding.get("subjects") != [{"kind": "ServiceAccount", "name": NAME,
                                    "namespace": sa["metadata"].get("namespace")}]:
        errs.append(f"ClusterRoleBinding subjects are {binding.get('subjects')}: want only "
                    f"the ServiceAccount {NAME} in {sa['metadata'].get('namespace')}")
    return errs


@check("rbac")
def check_rbac():
    """The ClusterRole is exactly the least-privilege set, bound only to our
    ServiceAccount, and the README's RBAC table says the same."""
    errs = rbac_errors(installed())
    # the README's table: | `""` | services | list, watch | ... |
    _, text = section_text()
    table = set()
    for m in re.finditer(r"^\| `([^`]*)` \| ([a-z]+) \| ([a-z, ]+) \|", text, re.M):
        group = m.group(1).strip('"')
        for v in m.group(3).split(","):
            table.add((group, m.group(2), v.strip()))
    if table != RBAC:
        errs.append(f"the README's RBAC table differs from the ClusterRole: "
                    f"extra {sorted(table - RBAC)}, missing {sorted(RBAC - table)}")
    return errs


def effective_config(config_text):
    """Run the binary on @config_text (a config.conf): (exit, stderr, written JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg, out = os.path.join(tmp, "config.conf"), os.path.join(tmp, "out.json")
        with open(cfg, "w", encoding="utf-8") as fh:
            fh.write(config_text)
        r = run([BIN, f"--config={cfg}", "--hostname-override=probe",
                 f"--write-config-to={out}"])
        written = None
        if r.returncode == 0:
            with open(out, encoding="utf-8") as fh:
                written = json.load(fh)
        return r.returncode, r.stderr, written


def consistency_errors(objs, configmap, help_names):
    """Cross-references between the DaemonSet, its ServiceAccount, the kube-proxy
    ConfigMap, the Containerfile and the binary's flags."""
    errs = []
    ds = objs.get(("DaemonSet", NAME))
    if not ds:
        return [f"no DaemonSet {NAME}"]
    for (kind, name), d in objs.items():
        if kind not in ("ClusterRole", "ClusterRoleBinding") and \
                d["metadata"].get("namespace") != NAMESPACE:
            errs.append(f"{kind} {name}: namespace must be {NAMESPACE} (kubeadm's ConfigMap "
                        f"is there)")
    spec = ds["spec"]
    tmpl = spec["template"]
    pod = tmpl["spec"]
    labels = tmpl.get("metadata", {}).get("labels", {})
    for k, v in spec["selector"].get("matchLabels", {}).items():
        if labels.get(k) != v:
            errs.append(f"selector {k}={v} does not match the pod template's labels")
    if spec.get("updateStrategy") != {"type": "RollingUpdate", "rollingUpdate":
                                      {"maxUnavailable": 1, "maxSurge": 0}}:
        errs.append("updateStrategy: want RollingUpdate, maxUnavailable 1, maxSurge 0")
    want = {"hostNetwork": True, "priorityClassName": "system-node-critical",
            "tolerations": [{"operator": "Exists"}], "serviceAccountName": NAME,
            "dnsPolicy": "Default"}
    for k, v in want.items():
        if pod.get(k) != v:
            errs.append(f"pod spec {k}: {pod.get(k)!r}, want {v!r}")
    if pod.get("automountServiceAccountToken") is False:
        errs.append("automountServiceAccountToken: kubeconfig.conf reads the pod's token")
    sel = pod.get("nodeSelector", {})
    if sel.get("kubernetes.io/os") != "linux" or sel.get(HANDOVER_LABEL) != "true":
        errs.append(f"nodeSelector: want kubernetes.io/os=linux and {HANDOVER_LABEL}=true")
    if ("ServiceAccount", pod.get("serviceAccountName")) not in objs:
        errs.append(f"serviceAccountName {pod.get('serviceAccountName')} is not in the "
                    f"manifests")
    if len(pod["containers"]) != 1:
        errs.append("want exactly one container")
        return errs
    c = pod["containers"][0]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    for n in mounts:
        if n not in volumes:
            errs.append(f"volumeMount {n} has no volume")
    for n in volumes:
        if n not in mounts:
            errs.append(f"volume {n} is not mounted")

    def host_mount(path, vtype, read_only):
        for n, v in volumes.items():
            hp = v.get("hostPath")
            if hp and hp["path"] == path:
                if hp.get("type", "") != vtype:
                    errs.append(f"hostPath {path}: type {hp.get('type')!r}, want {vtype!r}")
                m = mounts.get(n)
                if not m or m["mountPath"] != path or bool(m.get("readOnly")) != read_only:
                    errs.append(f"hostPath {path}: want it mounted at {path}, "
                                f"{'read-only' if read_only else 'read-write'}")
                return
        errs.append(f"no hostPath volume for {path}")
    host_mount("/run/xtables.lock", "FileOrCreate", False)
    host_mount("/lib/modules", "", True)

    # the ConfigMap volume and what the command line reads from it
    cm_vols = [n for n, v in volumes.items() if "configMap" in v]
    if len(cm_vols) != 1 or volumes[cm_vols[0]]["configMap"].get("name") != CONFIGMAP or \
            "items" in volumes[cm_vols[0]]["configMap"]:
        errs.append(f"want one configMap volume of ConfigMap {CONFIGMAP}, all keys")
        return errs
    cm_mount = mounts.get(cm_vols[0], {}).get("mountPath")
    if cm_mount != CONFIG_DIR:
        errs.append(f"the ConfigMap is mounted at {cm_mount}, want {CONFIG_DIR} as kubeadm")
    keys = set(configmap.get("data", {}))
    cmd = c.get("command", []) + c.get("args", [])
    if not cmd or cmd[0] != INSTALL_PATH:
        errs.append(f"command[0] {cmd[:1]}: want {INSTALL_PATH}, where the image installs it")
    flags = {}
    for a in cmd[1:]:
        m = re.match(r"^--([a-z0-9-]+)(?:=(.*))?$", a)
        if not m:
            errs.append(f"argument {a!r}: want --flag=value")
            continue
        flags[m.group(1)] = m.group(2)
        if m.group(1) not in help_names:
            errs.append(f"--{m.group(1)} is not a flag of the binary (--help)")
    if flags.get("config") != f"{CONFIG_DIR}/config.conf" or "config.conf" not in keys:
        errs.append(f"--config={flags.get('config')}: want {CONFIG_DIR}/config.conf, a key "
                    f"of the ConfigMap")
    env = {e["name"]: e for e in c.get("env", [])}
    if flags.get("hostname-override") != "$(NODE_NAME)" or \
            env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}) \
            .get("fieldPath") != "spec.nodeName":
        errs.append("--hostname-override=$(NODE_NAME) with NODE_NAME from spec.nodeName wanted")
    for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", " ".join(cmd)):
        if ref not in env:
            errs.append(f"$({ref}) in the command line is not an env var of the container")
    if c.get("securityContext") != {"privileged": True}:
        errs.append("securityContext: want privileged (README: why)")

    # the config file the ConfigMap carries, as the binary reads it
    config_text = configmap.get("data", {}).get("config.conf", "")
    code, stderr, written = effective_config(config_text)
    if code != 0:
        errs.append(f"the binary rejects the ConfigMap's config.conf (exit {code}): {stderr}")
        return errs
    if "warning" in stderr:
        errs.append(f"the binary warns about the ConfigMap's config.conf: {stderr.strip()}")
    kubeconfig = written["clientConnection"]["kubeconfig"]
    if os.path.dirname(kubeconfig) != cm_mount or os.path.basename(kubeconfig) not in keys:
        errs.append(f"clientConnection.kubeconfig {kubeconfig} is not a key of the ConfigMap "
                    f"under {cm_mount}")
    healthz_port = int(written["healthzBindAddress"].rsplit(":", 1)[1])
    ports = {p.get("name"): p for p in c.get("ports", [])}
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/healthz")):
        hg = c.get(probe, {}).get("httpGet")
        if not hg:
            errs.append(f"{probe}: want an httpGet probe")
            continue
        port = hg["port"]
        if isinstance(port, str):
            if port not in ports:
                errs.append(f"{probe}: port {port!r} is not a named port of the container")
                continue
            port = ports[port]["containerPort"]
        if hg.get("path") != path or port != healthz_port or hg.get("scheme", "HTTP") != "HTTP":
            errs.append(f"{probe}: {hg.get('scheme', 'HTTP')} {hg.get('path')} on {port}, "
                        f"want HTTP {path} on the healthz port {healthz_port}")
        if "host" in hg:
            errs.append(f"{probe}: no host wanted (the pod IP is the node's)")
    for p in c.get("ports", []):
        if p["containerPort"] != healthz_port:
            errs.append(f"port {p['containerPort']}: only the healthz port is declared")
    return errs


def example_configmap():
    docs = load_docs(os.path.join(DEPLOY, "examples", "kube-proxy-configmap.yaml"))
    return docs[0]


@check("consistency")
def check_consistency():
    """Names, namespaces, ports, paths, probes, command line and image agree across
    the manifests, kubeadm's ConfigMap, the Containerfile and the binary."""
    need_bin()
    help_names = {f["name"] for f in generate.help_flags()}
    objs = installed()
    errs = consistency_errors(objs, example_configmap(), help_names)
    # the same objects in the parts as in install.yaml is "generated"'s job; the
    # image: one name everywhere, tagged with VERSION
    images = set()
    for f in manifest_files():
        with open(f, encoding="utf-8") as fh:
            images |= set(re.findall(r"^\s*image: (\S+)", fh.read(), re.M))
    want = f"registry.invalid/{NAME}:v{generate.version()}"
    if images != {want}:
        errs.append(f"images {sorted(images)}: want only {want}")
    # the Containerfile installs the binary where the command line runs it
    with open(os.path.join(DEPLOY, "Containerfile"), encoding="utf-8") as fh:
        cf = fh.read()
    if f"COPY --from=build /src/_output/bin/{NAME} {INSTALL_PATH}" not in cf:
        errs.append(f"the Containerfile does not install the binary at {INSTALL_PATH}")
    # the cleanup pod: the same image, --cleanup, the lock file
    pod = load_docs(os.path.join(DEPLOY, "examples", "cleanup-pod.yaml"))[0]
    pc = pod["spec"]["containers"][0]
    if pc["command"] != [INSTALL_PATH, "--cleanup"] or not pod["spec"].get("hostNetwork") or \
            pc.get("securityContext") != {"privileged": True}:
        errs.append("cleanup-pod.yaml: want a privileged host-network pod running --cleanup")
    if not any(v.get("hostPath", {}).get("path") == "/run/xtables.lock"
               for v in pod["spec"].get("volumes", [])):
        errs.append("cleanup-pod.yaml: /run/xtables.lock is not mounted")
    # the README's hand-over commands use the DaemonSet's label, the other way round
    _, text = section_text()
    if f'{{"key": "{HANDOVER_LABEL}", "operator": "NotIn", "values": ["true"]}}' not in text:
        errs.append(f"README: the kube-proxy patch does not keep it off {HANDOVER_LABEL}=true")
    for cmd in (f"kubectl label node NODE {HANDOVER_LABEL}=true",
                f"kubectl label node NODE {HANDOVER_LABEL}-"):
        if cmd not in text:
            errs.append(f"README: missing `{cmd}`")
    return errs


@check("kubeadm-config")
def check_kubeadm_config():
    """kubeadm's config.conf (the example ConfigMap, and the fields kubeadm v1.29-v1.33
    writes) loads without a warning and yields upstream's defaults."""
    need_bin()
    code, stderr, w = effective_config(example_configmap()["data"]["config.conf"])
    if code != 0:
        return [f"exit {code}: {stderr}"]
    errs = [] if "warning" not in stderr else [f"warnings: {stderr.strip()}"]
    if w.get("mode") not in ("", "iptables"):
        errs.append(f"mode: {w.get('mode')!r}, want iptables (or empty: the default)")
    want = {"healthzBindAddress": "0.0.0.0:10256", "metricsBindAddress": "127.0.0.1:10249",
            "clusterCIDR": "10.244.0.0/16", "oomScoreAdj": -999,
            "detectLocalMode": "ClusterCIDR"}
    want_sub = {("iptables", "masqueradeBit"): 14, ("iptables", "syncPeriod"): "30s",
                ("iptables", "minSyncPeriod"): "1s", ("iptables", "localhostNodePorts"): True,
                ("conntrack", "maxPerCore"): 32768, ("conntrack", "min"): 131072,
                ("clientConnection", "kubeconfig"): f"{CONFIG_DIR}/kubeconfig.conf"}
    for k, v in want.items():
        if w.get(k) != v:
            errs.append(f"{k}: {w.get(k)!r}, want {v!r}")
    for (a, b), v in want_sub.items():
        if w.get(a, {}).get(b) != v:
            errs.append(f"{a}.{b}: {w.get(a, {}).get(b)!r}, want {v!r}")
    return errs


def readme_commands(text):
    """The shell commands of the README section's ```sh blocks, continuation
    lines joined and comments dropped, in order."""
    cmds = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M):
        cur = ""
        for line in block.splitlines():
            if not cur and line.lstrip().startswith("#"):
                continue
            cur += line + "\n"
            if cur.count("'") % 2 == 0 and not line.rstrip().endswith("\\"):
                cmd = re.sub(r"\s+#[^'\n]*$", "", cur.strip())
                if cmd:
                    cmds.append(cmd)
                cur = ""
    return cmds


def node_matches(pod_spec, labels):
    """Would the DaemonSet controller put this pod on a node with @labels?
    (nodeSelector and required node affinity; taints are all tolerated)."""
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not req:
        return True

    def expr_ok(e):
        have = e["key"] in labels
        if e["operator"] == "In":
            return have and labels[e["key"]] in e["values"]
        if e["operator"] == "NotIn":
            return not have or labels[e["key"]] not in e["values"]
        if e["operator"] == "Exists":
            return have
        if e["operator"] == "DoesNotExist":
            return not have
        raise AssertionError(f"operator {e['operator']} not modelled")
    return any(all(expr_ok(e) for e in t.get("matchExpressions", []))
               for t in req["nodeSelectorTerms"])


@check("readme-commands")
def check_readme_commands():
    """The hand-over guide's kubectl commands, run for real against the test API
    server holding a kube-proxy DaemonSet of kubeadm's shape: kube-proxy and
    kube-iptables-proxy then select complementary nodes, the capabilities patch
    gives a valid DaemonSet, and the rollback patch restores kube-proxy's."""
    k = kubectl()
    _, text = section_text()
    cmds = readme_commands(text)
    patches = [c for c in cmds if c.startswith("kubectl") and " patch " in c]
    errs = []
    for c in patches:
        m = re.search(r"-p '(.*)'", c, re.S)
        try:
            json.loads(m.group(1))
        except (AttributeError, ValueError) as e:
            errs.append(f"{c[:60]}...: the patch is not JSON: {e}")
    step1 = [c for c in patches if "daemonset kube-proxy --type=strategic" in c]
    caps = [c for c in patches if "daemonset kube-iptables-proxy" in c]
    back = [c for c in patches if "daemonset kube-proxy --type=json" in c]
    install = [c for c in cmds if c.startswith("kubectl apply -k hack/deploy")]
    if not (len(step1) == len(caps) == len(back) == len(install) == 1):
        return errs + [f"want one each of the kube-proxy patch, the capabilities patch, the "
                       f"rollback patch and `kubectl apply -k hack/deploy`; found "
                       f"{len(step1)}, {len(caps)}, {len(back)}, {len(install)}"]
    # kube-proxy's DaemonSet as kubeadm makes it: ours, renamed, without our additions
    ours = installed()[("DaemonSet", NAME)]
    kp = copy.deepcopy(ours)
    kp["metadata"] = {"name": "kube-proxy", "namespace": NAMESPACE,
                      "labels": {"k8s-app": "kube-proxy"}}
    kp["spec"]["selector"] = {"matchLabels": {"k8s-app": "kube-proxy"}}
    kp["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    kp["spec"]["template"]["metadata"] = {"labels": {"k8s-app": "kube-proxy"}}
    ps = kp["spec"]["template"]["spec"]
    ps["nodeSelector"] = {"kubernetes.io/os": "linux"}
    ps["serviceAccountName"] = "kube-proxy"
    for f in ("dnsPolicy", "automountServiceAccountToken", "terminationGracePeriodSeconds"):
        ps.pop(f, None)
    c0 = ps["containers"][0]
    c0.update(name="kube-proxy", image="registry.k8s.io/kube-proxy:v1.33.1")
    c0["command"][0] = "/usr/local/bin/kube-proxy"
    for f in ("ports", "livenessProbe", "readinessProbe", "resources"):
        c0.pop(f, None)
    with TestApiServer() as api:
        env = dict(os.environ, KUBECONFIG=api.kubeconfig, HOME=api.tmp)

        def sh(cmd):
            r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True,
                               timeout=60, env=dict(env, PATH=f"{os.path.dirname(k)}:"
                                                    f"{env.get('PATH', '')}"), cwd=ROOT)
            if r.returncode != 0:
                errs.append(f"`{cmd[:70]}...`: exit {r.returncode}: {r.stderr.strip()[:400]}")
            return r.returncode == 0

        def get(name):
            r = run([k, "-n", NAMESPACE, "get", "daemonset", name, "-o", "json"], env=env)
            return json.loads(r.stdout) if r.returncode == 0 else None

        r = run([k, "create", "--validate=false", "-f", "-"], env=env, input=json.dumps(kp))
        if r.returncode != 0:
            return errs + [f"creating kube-proxy's DaemonSet: {r.stderr}"]
        # the test API server has no OpenAPI document for kubectl to validate against
        if not (sh(step1[0]) and sh(install[0].replace(" apply ", " apply --validate=false ",
                                                        1))):
            return errs
        kpd, ds = get("kube-proxy"), get(NAME)
        for what, d in (("kube-proxy", kpd), (NAME, ds)):
            if d is None:
                errs.append(f"no DaemonSet {what} after the guide's steps 1 and 2")
        if errs:
            return errs
        for d in (kpd, ds):
            for e in k8s_schema.validate({f: d[f] for f in ("apiVersion", "kind", "spec")} |
                                         {"metadata": {"name": d["metadata"]["name"]}}):
                errs.append(f"after the guide's patch, {d['metadata']['name']}: {e}")
        for labels in ({"kubernetes.io/os": "linux"},
                       {"kubernetes.io/os": "linux", HANDOVER_LABEL: "true"},
                       {"kubernetes.io/os": "linux", HANDOVER_LABEL: "false"}):
            a = node_matches(kpd["spec"]["template"]["spec"], labels)
            b = node_matches(ds["spec"]["template"]["spec"], labels)
            if a == b:
                errs.append(f"a node labelled {labels} gets "
                            f"{'both proxies' if a else 'no proxy'}")
        if not (sh(caps[0]) and sh(back[0])):
            return errs
        ds, kpd = get(NAME), get("kube-proxy")
        sc = ds["spec"]["template"]["spec"]["containers"][0]["securityContext"]
        if sc != {"privileged": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW",
                                                                 "SYS_MODULE"]}}:
            errs.append(f"after the capabilities patch: securityContext {sc}")
        errs += [f"after the capabilities patch: {e}" for e in k8s_schema.validate(
            {f: ds[f] for f in ("apiVersion", "kind", "spec")} |
            {"metadata": {"name": NAME}})]
        if kpd["spec"]["template"]["spec"] != kp["spec"]["template"]["spec"]:
            errs.append("the rollback patch does not give kube-proxy's pod spec back")
    return errs


class Netns:
    """A throwaway network namespace with loopback up; close() kills what runs in
    it (by pid) and deletes it. The machine's own namespace is never touched."""

    def __init__(self):
        self.name = f"kipdeploy-{os.getpid()}"
        self.procs = []
        r = run(["ip", "netns", "add", self.name])
        if r.returncode != 0:
            raise Skip(f"ip netns add: {r.stderr.strip()}")
        run(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def cmd(self, argv):
        return ["ip", "netns", "exec", self.name, *argv]

    def popen(self, argv, log):
        p = subprocess.Popen(self.cmd(argv), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def http(self, port, path):
        """GET http://127.0.0.1:port/path inside: (status, body); status 0 if refused."""
        r = run(self.cmd(["curl", "-s", "-m", "2", "-w", "\n%{http_code}",
                          f"http://127.0.0.1:{port}{path}"]))
        body, _, code = r.stdout.rpartition("\n")
        return int(code or 0), body

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        run(["ip", "netns", "del", self.name])


def observed_requests(log_text):
    """(group, resource, verb, user) of every request in the test API server's -v 1 log."""
    sys.path.insert(0, os.path.join(ROOT, "test", "apiserver"))
    import urllib.parse
    import apiserver
    out = []
    for m in re.finditer(r"apiserver\] (GET|POST|PUT|PATCH|DELETE) (\S+) (\d{3}) \S+ "
                         r"user=(\S+)", log_text):
        method, target, _, user = m.groups()
        u = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(u.query))
        try:
            route = apiserver.resolve(method, u.path, query)
        except Exception:  # an unknown path: report it as such
            out.append(("?", u.path, method, user))
            continue
        if route["kind"] == "discovery":
            out.append(("discovery", u.path, "get", user))
        else:
            rt = route["rt"]
            out.append((rt.group, rt.plural, route["verb"], user))
    return out


@check("pod-smoke")
def check_pod_smoke():
    """The DaemonSet's pod, as far as it runs without a cluster: inside a throwaway
    network namespace, its command line (from install.yaml) with kubeadm's ConfigMap
    (only the server changed) at /var/lib/kube-proxy and a service-account token and
    CA where kubelet mounts them (private mounts), against the test API server over
    TLS with that token. The probes answer 200, the rules are in the kernel, every API
    request is one the ClusterRole allows, SIGTERM exits 0 leaving the rules, and the
    cleanup pod's command removes them all."""
    need_bin()
    if os.geteuid() != 0:
        raise Skip("needs root (network and mount namespaces)")
    for tool in ("ip", "unshare", "openssl", "curl", "iptables-legacy-save", "iptables-nft-save"):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not installed")
    objs = installed()
    pod = objs[("DaemonSet", NAME)]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    cm_mount = next(m["mountPath"] for m in c["volumeMounts"]
                    if "configMap" in volumes[m["name"]])
    node = "node-a"  # the bundled example cluster's node
    env = {e["name"]: node for e in c.get("env", [])
           if e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName"}
    argv = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a)
            for a in c["command"] + c.get("args", [])]
    argv[0] = BIN  # the image installs it at command[0]; here it is the build's
    port = next(p["containerPort"] for p in c["ports"]
                if p.get("name") == c["livenessProbe"]["httpGet"]["port"]) \
        if isinstance(c["livenessProbe"]["httpGet"]["port"], str) \
        else c["livenessProbe"]["httpGet"]["port"]
    cm = example_configmap()
    errs = []
    tmp = tempfile.mkdtemp(prefix="kip-pod-", dir="/tmp")
    ns = None
    try:
        r = run(["sh", os.path.join(ROOT, "test", "apiserver", "gen-certs.sh"),
                 os.path.join(tmp, "pki")])
        if r.returncode != 0:
            return [f"gen-certs.sh: {r.stderr}"]
        for d in ("cm", "sa"):
            os.mkdir(os.path.join(tmp, d))
        with open(os.path.join(tmp, "sa", "token"), "w") as fh:
            fh.write("kip-deploy-token\n")
        shutil.copy(os.path.join(tmp, "pki", "ca.crt"), os.path.join(tmp, "sa", "ca.crt"))
        ns = Netns()
        api_log = open(os.path.join(tmp, "api.log"), "w")
        port_file = os.path.join(tmp, "port")
        api = ns.popen([PY, os.path.join(HERE, "kapi.py"), "--port", "0", "--port-file", port_file,
                  "--tls-cert", os.path.join(tmp, "pki", "server.crt"),
                  "--tls-key", os.path.join(tmp, "pki", "server.key"),
                  "--token-file", os.path.join(tmp, "sa", "token"),
                  "--fixture", os.path.join(ROOT, "hack", "examples", "cluster.yaml"),
                  "-v", "1"], api_log)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if time.monotonic() > deadline:
                return ["the test API server did not start"]
            time.sleep(0.05)
        with open(port_file) as fh:
            api_port = int(fh.read())
        # kubeadm's ConfigMap, unchanged but for the control-plane endpoint
        kc = cm["data"]["kubeconfig.conf"]
        kc2 = re.sub(r"server: \S+", f"server: https://127.0.0.1:{api_port}", kc)
        if kc2 == kc:
            return ["kubeconfig.conf has no server: line"]
        for key, text in (("config.conf", cm["data"]["config.conf"]), ("kubeconfig.conf", kc2)):
            with open(os.path.join(tmp, "cm", key), "w") as fh:
                fh.write(text)
        # the pod's mounts, in a private mount namespace: tmpfs over the parents so
        # that the machine's own /var/lib and /run get no new directory
        sa_dir = "/run/secrets/kubernetes.io/serviceaccount"  # /var/run is /run
        script = "\n".join([
            "set -e",
            f"mount -t tmpfs tmpfs {os.path.dirname(cm_mount)}",
            f"mkdir -p {cm_mount} && mount --bind {tmp}/cm {cm_mount}",
            f"mount -o remount,bind,ro {cm_mount}",
            "mount -t tmpfs tmpfs /run",
            f"mkdir -p {sa_dir} && mount --bind {tmp}/sa {sa_dir}",
            "touch /run/xtables.lock",
            'exec "$@"'])
        proxy_log = open(os.path.join(tmp, "proxy.log"), "w")
        proxy = ns.popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                          "sh", *argv], proxy_log)

        def log():
            with open(os.path.join(tmp, "proxy.log")) as fh:
                return fh.read()
        # synced: the metrics server (127.0.0.1:10249 by default) says so
        synced = False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proxy.poll() is None:
            code, body = ns.http(10249, "/metrics")
            m = re.search(r"^kubeproxy_sync_proxy_rules_last_timestamp_seconds\S* (\S+)$",
                          body, re.M)
            if code == 200 and m and float(m.group(1)) > 0:
                synced = True
                break
            time.sleep(0.2)
        if not synced:
            return [f"no sync within 20 s (exit {proxy.poll()}):\n{log()[-2000:]}"]
        for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/healthz")):
            want = c[probe]["httpGet"]["path"]
            code, body = ns.http(port, want)
            if code != 200 or '"healthy":true' not in body.replace(" ", ""):
                errs.append(f"{probe} {want} on {port}: {code} {body[:200]}")
        be = re.search(r'Chose the iptables backend" backend="(\w+)"', log())
        be = be.group(1) if be else "nft"
        r = run(ns.cmd([f"iptables-{be}-save", "-t", "nat"]))
        have = set(re.findall(r"^:(KUBE-\S+)", r.stdout, re.M))
        dump = run([BIN, "--dump-rules", "--ip-family=ipv4", f"--hostname-override={node}",
                    "--config", os.path.join(tmp, "cm", "config.conf"),
                    "--from-file", os.path.join(ROOT, "hack", "examples", "cluster.yaml")])
        nat = dump.stdout.split("*nat", 1)[-1].split("COMMIT", 1)[0]
        want_chains = set(re.findall(r"^:(KUBE-\S+)", nat, re.M))
        if not want_chains or not want_chains <= have:
            errs.append(f"nat chains of --dump-rules missing in the kernel ({be}): "
                        f"{sorted(want_chains - have)[:10]}")
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(15)
        except subprocess.TimeoutExpired:
            errs.append("SIGTERM: still running after 15 s")
        if proxy.returncode != 0:
            errs.append(f"SIGTERM: exit {proxy.returncode}, want 0:\n{log()[-1500:]}")
        after = set(re.findall(r"^:(KUBE-\S+)",
                               run(ns.cmd([f"iptables-{be}-save", "-t", "nat"])).stdout, re.M))
        if after != have:
            errs.append("the rules changed when the proxy exited: they must stay in place")
        # requests: all authenticated with the pod's token, all allowed by the ClusterRole
        # (a watch is logged when it ends: stop the server, which ends them all)
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:
            errs.append("the test API server did not stop on SIGTERM")
        api_log.flush()
        with open(os.path.join(tmp, "api.log")) as fh:
            reqs = observed_requests(fh.read())
        seen = set()
        for group, res, verb, user in reqs:
            if group == "discovery":
                continue
            if not user.startswith("token:"):
                errs.append(f"{verb} {group}/{res} as {user}: not with the pod's token")
            if (group, res, verb) not in RBAC:
                errs.append(f"{verb} {group or 'core'}/{res}: not allowed by the ClusterRole")
            seen.add((group, res, verb))
        for t in (("", "services", "watch"), ("discovery.k8s.io", "endpointslices", "watch"),
                  ("", "nodes", "watch")):
            if t not in seen:
                errs.append(f"no {t[2]} of {t[1]} seen: is the log format still parsed? "
                            f"{sorted(seen)}")
        # the cleanup pod's command removes every owned chain, in both backends
        cpod = load_docs(os.path.join(DEPLOY, "examples", "cleanup-pod.yaml"))[0]
        ccmd = cpod["spec"]["containers"][0]["command"]
        r = run(ns.cmd([BIN, *ccmd[1:]]))
        if r.returncode != 0:
            errs.append(f"{' '.join(ccmd[1:])}: exit {r.returncode}: {r.stderr[-800:]}")
        for b in ("nft", "legacy"):
            for ip in ("iptables", "ip6tables"):
                left = re.findall(r"^:(KUBE-\S+)", run(ns.cmd([f"{ip}-{b}-save"])).stdout, re.M)
                if left:
                    errs.append(f"after --cleanup, {ip}-{b} still has {left[:5]}")
    finally:
        if ns:
            ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return errs


def hc_service(path):
    """(namespace, name, healthCheckNodePort) of the first Service of @path that has one."""
    for d in load_docs(path):
        for o in d.get("items", [d]):
            port = o.get("spec", {}).get("healthCheckNodePort") if o.get("kind") == "Service" \
                else None
            if port:
                return o["metadata"].get("namespace", "default"), o["metadata"]["name"], port
    raise AssertionError(f"{rel(path)} has no Service with a healthCheckNodePort")


@check("events")
def check_events():
    """The Events of the README's "Events" section reach the API server, as the
    ClusterRole allows: FailedToStartServiceHealthcheck on the Service whose
    healthCheckNodePort is taken, and FailedToSyncIptablesRules on the Node after
    the third failed restore in a row. The daemon runs in a throwaway network
    namespace against the test API server, with an iptables-nft-restore in front of
    the real one that fails while a flag file exists."""
    need_bin()
    if os.geteuid() != 0:
        raise Skip("needs root (network namespaces)")
    for tool in ("ip", "curl", "iptables-nft-restore"):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not installed")
    fixture = os.path.join(ROOT, "hack", "examples", "cluster.yaml")
    hc_ns, hc_name, hc_port = hc_service(fixture)
    node = "node-a"
    errs = []
    tmp = tempfile.mkdtemp(prefix="kip-events-", dir="/tmp")
    ns = None
    try:
        flag = os.path.join(tmp, "fail")
        wrapper = os.path.join(tmp, "iptables-nft-restore")
        with open(wrapper, "w") as fh:
            fh.write(f"#!/bin/sh\nif [ -e {flag} ]; then\n\tcat >/dev/null\n"
                     f"\techo 'iptables-restore: line 3 failed' >&2\n\texit 1\nfi\n"
                     f"exec {shutil.which('iptables-nft-restore')} \"$@\"\n")
        os.chmod(wrapper, 0o755)
        ns = Netns()
        api_log = open(os.path.join(tmp, "api.log"), "w")
        port_file = os.path.join(tmp, "port")
        api = ns.popen([PY, os.path.join(HERE, "kapi.py"), "--port", "0", "--port-file",
                        port_file, "--fixture", fixture, "-v", "1"], api_log)
        held = os.path.join(tmp, "held")
        holder_log = open(os.path.join(tmp, "holder.log"), "w")
        ns.popen([PY, "-c", "import socket, sys, time\n"
                  "s = socket.socket()\n"
                  f"s.bind(('0.0.0.0', {hc_port}))\n"
                  "s.listen()\n"
                  f"open({held!r}, 'w').close()\n"
                  "time.sleep(120)\n"], holder_log)
        deadline = time.monotonic() + 15
        while not (os.path.exists(port_file) and os.path.exists(held)):
            if time.monotonic() > deadline:
                return ["the test API server or the port holder did not start"]
            time.sleep(0.05)
        with open(port_file) as fh:
            api_port = int(fh.read())
        server = f"http://127.0.0.1:{api_port}"
        proxy_log = open(os.path.join(tmp, "proxy.log"), "w")
        proxy = ns.popen(["env", f"PATH={tmp}:{os.environ.get('PATH', '')}", BIN,
                          f"--master={server}", f"--hostname-override={node}",
                          "--iptables-backend=nft", "--ip-family=ipv4",
                          "--iptables-min-sync-period=100ms", "--iptables-sync-period=2s",
                          "--conntrack-max-per-core=0", "--healthz-bind-address=127.0.0.1:0",
                          "--metrics-bind-address=", "-v=2"], proxy_log)

        def log():
            with open(os.path.join(tmp, "proxy.log")) as fh:
                return fh.read()

        def objects(kind):
            """The server's objects of @kind, read through its admin endpoint (which
            its request log leaves out: that log is the proxy's requests only)."""
            code, body = ns.http(api_port, "/_admin/state")
            if code != 200:
                return []
            return [o for o in json.loads(body)["items"] if o.get("kind") == kind]

        def events(reason, timeout):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and proxy.poll() is None:
                got = [e for e in objects("Event") if e.get("reason") == reason]
                if got:
                    return got
                time.sleep(0.2)
            errs.append(f"no {reason} Event within {timeout} s (exit {proxy.poll()}):\n"
                        f"{log()[-1500:]}")
            return []

        for e in events("FailedToStartServiceHealthcheck", 20):
            io = e["involvedObject"]
            if (io.get("kind"), io.get("namespace"), io.get("name")) != \
                    ("Service", hc_ns, hc_name) or e["metadata"]["namespace"] != hc_ns or \
                    e.get("type") != "Warning" or str(hc_port) not in e.get("message", ""):
                errs.append(f"FailedToStartServiceHealthcheck: {json.dumps(e)[:600]}")
        # restores fail from now on: change an EndpointSlice so that a sync is needed
        open(flag, "w").close()
        eps = next(o for d in load_docs(fixture) for o in d.get("items", [d])
                   if o.get("kind") == "EndpointSlice" and o.get("endpoints"))
        eps = copy.deepcopy(eps)
        eps["endpoints"][0]["addresses"] = ["10.244.1.77"]
        r = run(ns.cmd([PY, os.path.join(ROOT, "test", "apiserver", "admin.py"), "--server",
                        server, "apply", "-"]), input=json.dumps(eps))
        if r.returncode != 0:
            return errs + [f"admin.py apply: {r.stderr}"]
        failed = events("FailedToSyncIptablesRules", 20)
        uid = next((o["metadata"]["uid"] for o in objects("Node")
                    if o["metadata"]["name"] == node), None)
        for e in failed:
            io = e["involvedObject"]
            if (io.get("kind"), io.get("name"), io.get("uid")) != ("Node", node, uid) or \
                    e["metadata"]["namespace"] != "default" or e.get("type") != "Warning" or \
                    "line 3 failed" not in e.get("message", ""):
                errs.append(f"FailedToSyncIptablesRules: {json.dumps(e)[:600]}")
        n_failed = len(re.findall(r'"Sync failed"', log()))
        if failed and n_failed < 3:
            errs.append(f"FailedToSyncIptablesRules after {n_failed} failed syncs, want 3")
        for e in failed + events("FailedToStartServiceHealthcheck", 1):
            if e.get("source", {}).get("component") != NAME or \
                    e.get("reportingComponent") != NAME or \
                    e.get("source", {}).get("host") != node:
                errs.append(f"{e['reason']}: source {e.get('source')}, reportingComponent "
                            f"{e.get('reportingComponent')!r}: want {NAME} on {node}")
        os.unlink(flag)
        proxy.send_signal(signal.SIGTERM)
        try:
            proxy.wait(15)
        except subprocess.TimeoutExpired:
            errs.append("SIGTERM: still running after 15 s")
        if proxy.returncode != 0:
            errs.append(f"SIGTERM: exit {proxy.returncode}, want 0")
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(15)
        except subprocess.TimeoutExpired:
            errs.append("the test API server did not stop on SIGTERM")
        api_log.flush()
        with open(os.path.join(tmp, "api.log")) as fh:
            reqs = observed_requests(fh.read())
        posts = [t for t in reqs if t[1] == "events"]
        if not posts:
            errs.append("no request for events in the test API server's log")
        for group, res, verb, _ in reqs:
            if group != "discovery" and (group, res, verb) not in RBAC:
                errs.append(f"{verb} {group or 'core'}/{res}: not allowed by the ClusterRole")
    finally:
        if ns:
            ns.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return errs


# ---- the image recipe ----------------------------------------------------------------


def runtime_packages():
    stages = containerfile_stages()
    if len(stages) != 2:
        raise AssertionError(f"the Containerfile has {len(stages)} stages, want 2")
    return apt_packages(stages[1][1])


@check("image-libraries")
def check_image_libraries():
    """The runtime stage installs the package of every library the binary needs
    (ldd), by name for each direct one, and of every program it runs; no compilers."""
    need_bin()
    errs = []
    pkgs = runtime_packages()
    stages = containerfile_stages()
    if not re.match(r"FROM \S*debian:12(-slim)? AS build$", stages[0][0]) or \
            not re.match(r"FROM \S*debian:12-slim$", stages[1][0]):
        errs.append(f"stages: {stages[0][0]!r}, {stages[1][0]!r}: want Debian 12 builder "
                    f"and Debian 12 slim runtime")
    for p in pkgs:
        if BUILD_ONLY.match(p):
            errs.append(f"runtime stage installs {p}: build tools do not belong there")
    if not any("rm -rf /var/lib/apt/lists" in i for i in stages[1][1]):
        errs.append("runtime stage keeps the apt lists")
    closure = dpkg_depends_closure(pkgs + ["libc6"])
    r = run(["ldd", BIN])
    if r.returncode != 0:
        return [f"ldd: {r.stderr}"]
    direct = set(re.findall(r"NEEDED\s+(\S+)", run(["objdump", "-p", BIN]).stdout)) \
        if shutil.which("objdump") else set()
    libs = [m.groups() for m in re.finditer(r"^\s*(\S+) => (/\S+)", r.stdout, re.M)]
    progs = {p: shutil.which(p, path="/usr/sbin:/sbin:/usr/bin:/bin")
             for p in EXECS + ["conntrack", "nfacct"]}
    owners = dpkg_owners([path for _, path in libs] + [p for p in progs.values() if p])
    for soname, path in libs:
        owner = owners[path]
        if owner is None:
            errs.append(f"{soname} ({path}) belongs to no Debian package")
        elif soname in direct and owner not in pkgs and owner != "libc6":
            errs.append(f"{soname} is linked directly; its package {owner} is not in the "
                        f"runtime stage's list")
        elif owner not in closure:
            errs.append(f"{soname}: package {owner} is not installed by the runtime stage "
                        f"(nor pulled in by its dependencies)")
    if not libs:
        errs.append("ldd listed no library: is the binary static? then this check needs care")
    for prog, path in progs.items():
        owner = owners.get(path) if path else None
        if owner is None:
            errs.append(f"{prog}: not found here, so its package is unknown")
        elif owner not in pkgs:
            errs.append(f"{prog} (package {owner}) is run by the binary but its package is "
                        f"not in the runtime stage")
    return errs


def pkgconfig_modules():
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as fh:
        m = re.search(r"^PKGS\s*:?=\s*(.*)$", fh.read(), re.M)
    return m.group(1).split()


@check("image-build-packages")
def check_image_build_packages():
    """The build stage installs the -dev package of every pkg-config module the
    Makefile uses and of http-parser, all of them also in hack/install-deps.sh."""
    stages = containerfile_stages()
    build = apt_packages(stages[0][1])
    errs = []
    needed = {}
    for mod in pkgconfig_modules():
        r = run(["pkg-config", "--variable=pcfiledir", mod])
        if r.returncode != 0:
            raise Skip(f"pkg-config does not know {mod} here (run hack/install-deps.sh)")
        needed[mod] = dpkg_owner(os.path.join(r.stdout.strip(), f"{mod}.pc"))
    needed["http_parser.h"] = dpkg_owner("/usr/include/http_parser.h")
    for what, pkg in needed.items():
        if pkg is None:
            errs.append(f"{what}: no Debian package ships it here")
        elif pkg not in build:
            errs.append(f"{what} comes from {pkg}, which the build stage does not install")
    for p in ("build-essential", "pkg-config"):
        if p not in build:
            errs.append(f"the build stage does not install {p}")
    with open(os.path.join(ROOT, "hack", "install-deps.sh"), encoding="utf-8") as fh:
        m = re.search(r'PKGS="(.*?)"', fh.read(), re.S)
    deps = set(m.group(1).split()) if m else set()
    for p in build:
        if p not in deps:
            errs.append(f"build stage package {p} is not in hack/install-deps.sh")
    if "make" not in " ".join(stages[0][1]):
        errs.append("the build stage does not run make")
    return errs


def apt_simulate(pkgs):
    """Install @pkgs on an empty system, simulated from this machine's apt lists."""
    with tempfile.NamedTemporaryFile() as status:
        return run(["apt-get", "install", "-s", "-q", "--no-install-recommends",
                    "-o", f"Dir::State::status={status.name}", *pkgs])


@check("image-apt-resolve")
def check_image_apt_resolve():
    """Both stages' package lists resolve with apt on Debian 12 (simulated on an
    empty system from this machine's package lists: offline)."""
    if not shutil.which("apt-get") or not any(
            f.endswith("_Packages") or "_Packages." in f
            for f in os.listdir("/var/lib/apt/lists")):
        raise Skip("no apt package lists here (apt-get update)")
    with open("/etc/os-release", encoding="utf-8") as fh:
        if 'VERSION_ID="12"' not in fh.read():
            raise Skip("this machine is not Debian 12: its lists say nothing of the image's")
    errs = []
    stages = containerfile_stages()
    for (frm, instrs) in stages:
        pkgs = apt_packages(instrs)
        r = apt_simulate(pkgs)
        if r.returncode != 0:
            errs.append(f"{frm}: apt-get cannot install {' '.join(pkgs)}: "
                        f"{(r.stdout + r.stderr).strip()[-800:]}")
            continue
        inst = set(re.findall(r"^Inst (\S+)", r.stdout, re.M))
        if frm.endswith("debian:12-slim"):
            for p in sorted(inst):
                if BUILD_ONLY.match(p):
                    errs.append(f"runtime stage pulls in {p}")
    return errs


@check("image-chroot")
def check_image_chroot():
    """Opt-in (KIP_DEPLOY_CHROOT=1): debootstrap a Debian 12 root, install the
    runtime stage's packages with apt, copy the binary in, run it and iptables."""
    if os.environ.get("KIP_DEPLOY_CHROOT") != "1":
        raise Skip("opt-in: KIP_DEPLOY_CHROOT=1 (downloads packages, a few minutes)")
    if os.geteuid() != 0:
        raise Skip("needs root")
    if not shutil.which("debootstrap"):
        raise Skip("debootstrap is not installed")
    need_bin()
    r = subprocess.run([os.path.join(HERE, "chroot.sh"), BIN, *runtime_packages()],
                       text=True, capture_output=True, timeout=1800)
    sys.stdout.write(r.stdout[-3000:])
    return [] if r.returncode == 0 else [f"chroot.sh: exit {r.returncode}: {r.stderr[-2000:]}"]


# ---- the binary's operator interface -------------------------------------------------


def parse_man(text):
    """--man -> [{group, name, short, type, help, default}], as parse_help."""
    flags, group = [], None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^\.SH (.*) FLAGS$', line)
        if m:
            group = m.group(1).replace("\\-", "-")
            continue
        if line == ".TP" and i + 2 < len(lines) and lines[i + 1].startswith(".B "):
            head = lines[i + 1][3:].replace("\\-", "-")
            m = re.match(r"^(?:-(\w), )?--([a-z0-9-]+)(?: (\S+))?$", head)
            if not m:
                continue
            body = lines[i + 2].replace("\\-", "-")
            default = None
            d = re.search(r" \(default (.*)\)$", body)
            if d:
                default, body = d.group(1), body[:d.start()]
            flags.append({"group": group, "name": m.group(2), "short": m.group(1),
                          "type": m.group(3) or "", "help": body, "default": default})
    return flags


@check("help-man")
def check_help_man():
    """--help and --man list the same flags, groups, types, texts and defaults; the
    man page `make` builds is --man's, and groff finds nothing to warn about."""
    need_bin()
    h = generate.help_flags()
    m = parse_man(generate.run_bin("--man").stdout)
    errs = []
    hn, mn = [f["name"] for f in h], [f["name"] for f in m]
    if len(set(hn)) != len(hn):
        errs.append("--help lists a flag twice")
    for n in sorted(set(hn) - set(mn)):
        errs.append(f"--{n} is in --help but not in --man")
    for n in sorted(set(mn) - set(hn)):
        errs.append(f"--{n} is in --man but not in --help")
    if not errs and h != m:
        for a, b in zip(h, m):
            if a != b:
                errs.append(f"--{a['name']}: --help says {a}, --man says {b}")
    if len(h) < 50:
        errs.append(f"only {len(h)} flags parsed from --help: did its format change?")
    man = generate.run_bin("--man").stdout
    built = os.path.join(ROOT, "_output", "man", "man8", "kube-iptables-proxy.8")
    if BIN == os.path.join(ROOT, "_output", "bin", "kube-iptables-proxy"):
        # `make` builds the page from the binary (it is never committed)
        if not os.path.exists(built):
            errs.append(f"{rel(built)} is missing: `make` builds it")
        else:
            with open(built, encoding="utf-8") as fh:
                if fh.read() != man:
                    errs.append(f"{rel(built)} differs from --man: run make")
    if shutil.which("groff"):
        r = run(["groff", "-man", "-ww", "-z"], input=man)
        if r.returncode != 0 or r.stderr.strip():
            errs.append(f"groff -man -ww warns about --man: {r.stderr.strip()[:600]}")
    groups = list(dict.fromkeys(f["group"] for f in h))
    if len(groups) < 5 or groups[0] != "Main" or \
            groups[-1] != "Accepted for compatibility, no effect":
        errs.append(f"--help groups {groups}: want Main first, the flags of no effect last")
    return errs


def readme_flag_names(text):
    b = text.find("<!-- generated:flags:begin -->")
    e = text.find("<!-- generated:flags:end -->")
    if b < 0 or e < b:
        raise AssertionError("no generated flags table in the README section")
    return re.findall(r"^\| `--([a-z0-9-]+)`", text[b:e], re.M)


@check("readme-flags")
def check_readme_flags():
    """Every flag of --help is in the README section's flag table and vice versa;
    every config field the binary accepts is in its config table; its exit codes
    are the man page's. Reads README.md once the section is merged there."""
    need_bin()
    path, text = section_text()
    errs = []
    helpn = {f["name"] for f in generate.help_flags()}
    readme = readme_flag_names(text)
    for n in sorted(helpn - set(readme)):
        errs.append(f"--{n} is in --help but not in {rel(path)}")
    for n in sorted(set(readme) - helpn):
        errs.append(f"--{n} is in {rel(path)} but not in --help")
    if len(readme) != len(set(readme)):
        errs.append(f"{rel(path)} lists a flag twice")
    fields = {p for p, t in generate.config_fields() if t != "C_OBJECT"}
    doc_fields = set(re.findall(r"^\| `([A-Za-z.]+)` \| (?:honoured|ignored|required) \|",
                                text, re.M))
    for f in sorted(fields - doc_fields):
        errs.append(f"config field {f} is accepted by the binary but not in {rel(path)}")
    for f in sorted(doc_fields - fields):
        errs.append(f"config field {f} is in {rel(path)} but not accepted by the binary")
    codes = dict(re.findall(r"^\| (\d) \| (.+?) \|$", text, re.M))
    if sorted(codes) != ["0", "1", "2"]:
        errs.append(f"{rel(path)}: exit codes {sorted(codes)}, want 0, 1 and 2")
    return errs


@check("exit-codes")
def check_exit_codes():
    """The binary exits 0, 1 and 2 where the README says."""
    need_bin()
    errs = []
    with tempfile.TemporaryDirectory() as tmp:
        bad = os.path.join(tmp, "bad.conf")
        with open(bad, "w") as fh:
            fh.write("apiVersion: v1\nkind: Pod\n")
        cases = [(["--help"], 0), (["--version"], 0), (["--man"], 0),
                 (["--no-such-flag"], 2), (["--iptables-sync-period=soon"], 2),
                 ([f"--config={bad}"], 2), (["--proxy-mode=ipvs", "--dump-rules",
                                             "--from-file=/dev/null"], 2),
                 (["--dump-rules", "--hostname-override=n",
                   f"--from-file={os.path.join(tmp, 'missing.json')}"], 1),
                 (["--dump-rules", "--hostname-override=n", "--from-file=/dev/null"], 0)]
        for args, want in cases:
            r = run([BIN, *args])
            if r.returncode != want:
                errs.append(f"{' '.join(args)}: exit {r.returncode}, want {want}")
    return errs


@check("version")
def check_version():
    """--version names the version and the git revision it was built from."""
    need_bin()
    out = generate.run_bin("--version").stdout.strip()
    m = re.match(r"^kube-iptables-proxy v(\S+) \(git ([0-9a-f]{12}|unknown)(-dirty)?, "
                 r"Linux/\S+\)$", out)
    if not m:
        return [f"--version printed {out!r}"]
    errs = []
    if m.group(1) != generate.version():
        errs.append(f"--version says v{m.group(1)}, VERSION says {generate.version()}")
    r = run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"])
    if r.returncode == 0 and m.group(2) != r.stdout.strip():
        errs.append(f"--version says git {m.group(2)}, HEAD is {r.stdout.strip()}: rebuild")
    return errs


# ---- the checkers check something ----------------------------------------------------


@check("selftest")
def check_selftest():
    """Each checker above catches a broken copy of the manifests."""
    need_bin()
    errs = []
    base = installed()
    cm = example_configmap()
    help_names = {f["name"] for f in generate.help_flags()}
    ds_key = ("DaemonSet", NAME)

    def ds_pod(o):
        return o[ds_key]["spec"]["template"]["spec"]

    def mutate(fn):
        o = copy.deepcopy(base)
        fn(o)
        return o

    schema_cases = {
        "misspelt field": lambda o: ds_pod(o).__setitem__("hostNetwrok", True),
        "string port": lambda o: ds_pod(o)["containers"][0]["ports"][0]
        .__setitem__("containerPort", "10256"),
        "bad toleration operator": lambda o: ds_pod(o)["tolerations"][0]
        .__setitem__("operator", "Any"),
        "bad hostPath type": lambda o: ds_pod(o)["volumes"][1]["hostPath"]
        .__setitem__("type", "FileOrCreat"),
        "status in a manifest": lambda o: o[ds_key].__setitem__("status", {}),
        "bad label key": lambda o: ds_pod(o)["nodeSelector"].__setitem__("a/b/c", "x"),
        "missing container image": lambda o: ds_pod(o)["containers"][0].pop("image"),
    }
    for what, fn in schema_cases.items():
        if not k8s_schema.validate(mutate(fn)[ds_key]):
            errs.append(f"schema: did not catch {what}")
    role = ("ClusterRole", NAME)
    rbac_cases = {
        "an extra verb": lambda o: o[role]["rules"][0]["verbs"].append("get"),
        "a missing verb": lambda o: o[role]["rules"][2]["verbs"].remove("get"),
        "a wildcard": lambda o: o[role]["rules"].append(
            {"apiGroups": [""], "resources": ["*"], "verbs": ["list"]}),
        "events.k8s.io": lambda o: o[role]["rules"][3]["apiGroups"].append("events.k8s.io"),
        "another subject": lambda o: o[("ClusterRoleBinding", NAME)]["subjects"].append(
            {"kind": "Group", "name": "system:nodes"}),
    }
    for what, fn in rbac_cases.items():
        if not rbac_errors(mutate(fn)):
            errs.append(f"rbac: did not catch {what}")
    cons_cases = {
        "probe on the metrics port": lambda o: ds_pod(o)["containers"][0]["livenessProbe"]
        ["httpGet"].__setitem__("port", 10249),
        "an unknown flag": lambda o: ds_pod(o)["containers"][0]["command"].append(
            "--no-such-flag=1"),
        "a lost toleration": lambda o: ds_pod(o).__setitem__("tolerations", []),
        "a read-only lock file": lambda o: ds_pod(o)["containers"][0]["volumeMounts"][1]
        .__setitem__("readOnly", True),
        "an unmounted volume": lambda o: ds_pod(o)["containers"][0]["volumeMounts"].pop(2),
        "a wrong config path": lambda o: ds_pod(o)["containers"][0]["command"].__setitem__(
            1, "--config=/etc/kube-proxy/config.conf"),
        "no privileged": lambda o: ds_pod(o)["containers"][0].__setitem__(
            "securityContext", {"capabilities": {"add": ["NET_ADMIN"]}}),
        "maxSurge": lambda o: o[ds_key]["spec"]["updateStrategy"]["rollingUpdate"]
        .__setitem__("maxSurge", 1),
        "another namespace": lambda o: o[ds_key]["metadata"].__setitem__("namespace", "x"),
        "an undefined $(VAR)": lambda o: ds_pod(o)["containers"][0]["env"].clear(),
    }
    for what, fn in cons_cases.items():
        if not consistency_errors(mutate(fn), cm, help_names):
            errs.append(f"consistency: did not catch {what}")
    # the README checks, on broken copies of README.md's checked section
    section = section_text()[1] + generate.SECTION_END + "\n"
    saved = generate.README
    with tempfile.TemporaryDirectory() as tmp:
        try:
            generate.README = os.path.join(tmp, "README.md")
            cases = {
                "a flag missing from README.md": section.replace("| `--masquerade-all` |",
                                                                 "| masquerade-all |"),
                "a flag README.md has but --help not": section.replace(
                    "| `--masquerade-all` |", "| `--masquerade-all` |\n| `--no-such-flag` |"),
                "a config field missing from README.md": section.replace(
                    "| `oomScoreAdj` |", "| oomScoreAdj |"),
            }
            for what, text in cases.items():
                if text == section:
                    errs.append(f"selftest: cannot make {what}: the section changed?")
                    continue
                with open(generate.README, "w", encoding="utf-8") as fh:
                    fh.write("# kube-iptables-proxy\n\n" + text)
                if section_text()[0] != generate.README or not check_readme_flags():
                    errs.append(f"readme-flags: did not catch {what}")
            # the guide's commands, run for real: a kube-proxy patch that selects the
            # labelled nodes instead of avoiding them
            with open(generate.README, "w", encoding="utf-8") as fh:
                fh.write(section.replace('"operator": "NotIn"', '"operator": "In"'))
            try:
                caught = bool(check_readme_commands())
            except Skip:
                caught = True  # no kubectl here: readme-commands is skipped too
            if not caught:
                errs.append("readme-commands: did not catch a kube-proxy patch that "
                            "keeps kube-proxy on the handed-over nodes")
            with open(generate.README, "w", encoding="utf-8") as fh:
                fh.write("# kube-iptables-proxy\n\nno section here\n")
            try:
                section_text()
                errs.append("readme-flags: a README.md without the markers passes")
            except AssertionError:
                pass
        finally:
            generate.README = saved
    bad_cm = copy.deepcopy(cm)
    bad_cm["data"]["config.conf"] = bad_cm["data"]["config.conf"].replace(
        "healthzBindAddress: \"\"", "healthzBindAddress: 0.0.0.0:10257")
    if not consistency_errors(copy.deepcopy(base), bad_cm, help_names):
        errs.append("consistency: did not catch a healthz port other than the probes'")
    if consistency_errors(copy.deepcopy(base), cm, help_names):
        errs.append("consistency: the unchanged manifests fail")
    return errs


def main(argv):
    if not argv or argv[0] == "list":
        print("\n".join(CHECKS))
        return 0
    fn = CHECKS.get(argv[0])
    if fn is None:
        print(f"unknown check {argv[0]}; `checks.py list` names them")
        return 2
    try:
        errs = fn()
    except Skip as e:
        print(f"skipped: {e}")
        return SKIP
    except AssertionError as e:
        errs = [str(e)]
    for e in errs:
        print(f"  {e}")
    return 1 if errs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
