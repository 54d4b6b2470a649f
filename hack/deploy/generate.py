#!/usr/bin/python3
"""Generate the files of hack/deploy that are derived from others.

    hack/deploy/generate.py            rewrite what is stale
    hack/deploy/generate.py --check    change nothing; exit 1 and show a diff if stale

What it generates:
- install.yaml: the parts listed in kustomization.yaml, in that order, one
  YAML stream (kubectl apply -f hack/deploy/install.yaml).
- the image tag of the manifests: v$(cat VERSION).
- in README.md, which is their only copy, the blocks between
  "<!-- generated:NAME:begin -->" and "<!-- generated:NAME:end -->", all inside
  the part test/deploy checks (between the deploy-section markers):
    flags   from `kube-iptables-proxy --help`; the "with --config" column
            from what the binary says when each flag is given with --config;
    config  the KubeProxyConfiguration fields cmd/kpconfig.c accepts, honoured
            when --write-config-to writes them back (unless FIELD_NO_EFFECT
            says the binary only carries them), ignored otherwise;
    exit    from the EXIT STATUS of `kube-iptables-proxy --man`.
  So the tables cannot drift from the binary: test/deploy/run.sh runs --check.
  The prose around them is edited in README.md itself.

The binary is $KIP_BIN, default _output/bin/kube-iptables-proxy (run `make`).
Python 3 standard library plus python3-yaml only.
"""
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(os.environ.get("KIP_BIN",
                                     os.path.join(ROOT, "_output/bin/kube-iptables-proxy")))
README = os.path.join(ROOT, "README.md")
SECTION_BEGIN = "<!-- kube-iptables-proxy:deploy-section:begin -->"
SECTION_END = "<!-- kube-iptables-proxy:deploy-section:end -->"
IMAGE_RE = re.compile(r"(image: \S+/kube-iptables-proxy:)v[0-9A-Za-z.+_-]+")

# Upstream's correspondence between KubeProxyConfiguration fields and flags
# (cmd/kube-proxy/app/options.go). Used to describe each field with its flag's
# --help text; a field without an entry is described as having no flag.
FIELD_FLAG = {
    "bindAddress": "bind-address",
    "healthzBindAddress": "healthz-bind-address",
    "metricsBindAddress": "metrics-bind-address",
    "bindAddressHardFail": "bind-address-hard-fail",
    "enableProfiling": "profiling",
    "showHiddenMetricsForVersion": "show-hidden-metrics-for-version",
    "clientConnection.kubeconfig": "kubeconfig",
    "clientConnection.contentType": "kube-api-content-type",
    "clientConnection.qps": "kube-api-qps",
    "clientConnection.burst": "kube-api-burst",
    "hostnameOverride": "hostname-override",
    "mode": "proxy-mode",
    "featureGates": "feature-gates",
    "configSyncPeriod": "config-sync-period",
    "portRange": "proxy-port-range",
    "iptables.masqueradeBit": "iptables-masquerade-bit",
    "iptables.masqueradeAll": "masquerade-all",
    "iptables.localhostNodePorts": "iptables-localhost-nodeports",
    "iptables.syncPeriod": "iptables-sync-period",
    "iptables.minSyncPeriod": "iptables-min-sync-period",
    "conntrack.maxPerCore": "conntrack-max-per-core",
    "conntrack.min": "conntrack-min",
    "conntrack.tcpEstablishedTimeout": "conntrack-tcp-timeout-established",
    "conntrack.tcpCloseWaitTimeout": "conntrack-tcp-timeout-close-wait",
    "conntrack.tcpBeLiberal": "conntrack-tcp-be-liberal",
    "conntrack.udpTimeout": "conntrack-udp-timeout",
    "conntrack.udpStreamTimeout": "conntrack-udp-timeout-stream",
    "detectLocalMode": "detect-local-mode",
    "detectLocal.clusterCIDRs": "cluster-cidr",
    "detectLocal.bridgeInterface": "pod-bridge-interface",
    "detectLocal.interfaceNamePrefix": "pod-interface-name-prefix",
    "clusterCIDR": "cluster-cidr",
    "nodePortAddresses": "nodeport-addresses",
    "oomScoreAdj": "oom-score-adj",
    "logging.verbosity": "v",
    "logging.format": "logging-format",
    "logging.flushFrequency": "log-flush-frequency",
    "logging.vmodule": "vmodule",
}
# Fields the binary reads, validates and writes back (--write-config-to, /configz)
# but that change nothing; their flags say so in --help.
FIELD_NO_EFFECT = {"clientConnection.qps", "clientConnection.burst", "configSyncPeriod"}
# What a whole ignored object stands for, where no single flag does.
FIELD_NOTE = {
    "apiVersion": "must be kubeproxy.config.k8s.io/v1alpha1",
    "kind": "must be KubeProxyConfiguration",
    "clientConnection.acceptContentTypes": "the API is always read as JSON",
    "ipvs": "ipvs mode (the --ipvs-* flags)",
    "nftables": "nftables mode",
    "winkernel": "Windows",
    "windowsRunAsService": "Windows",
    "logging.options": "the --log-*-split-stream and --log-*-info-buffer-size flags",
}


# ---- the binary ----------------------------------------------------------


def run_bin(*args, check=True, sandbox=False):
    """Run the binary. @sandbox: in a network namespace of its own when root, so
    that a run mode (--cleanup, --init-only) can never reach this machine's
    rules or sysctls, whatever the binary's order of actions becomes."""
    argv = [BIN, *args]
    if sandbox and os.geteuid() == 0 and shutil.which("unshare"):
        argv = ["unshare", "--net", "--", *argv]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise SystemExit(f"generate: {BIN} {' '.join(args)}: exit {p.returncode}\n{p.stderr}")
    return p


HELP_LINE = re.compile(
    r"^  (?:-(?P<short>\w), |    )--(?P<name>[a-z0-9-]+)"
    r"(?: (?P<type>string|strings|int|float|duration))?\s+(?P<rest>.*)$")


def parse_help(text):
    """--help text -> [{group, name, short, type, help, default}] in order."""
    flags, group = [], None
    for line in text.splitlines():
        m = re.match(r"^(\S.*) flags:$", line)
        if m:
            group = m.group(1)
            continue
        m = HELP_LINE.match(line)
        if not m or group is None:
            continue
        rest = m.group("rest").strip()
        default = None
        d = re.search(r" \(default (.*)\)$", rest)
        if d:
            default, rest = d.group(1), rest[:d.start()]
        flags.append({"group": group, "name": m.group("name"), "short": m.group("short"),
                      "type": m.group("type") or "", "help": rest, "default": default})
    return flags


def help_flags():
    return parse_help(run_bin("--help").stdout)


def probe_value(f):
    """A value the flag accepts, for the --config probe (None: a bare flag)."""
    if f["type"] == "":
        return None
    if f["default"] not in (None, ""):
        return f["default"]
    return {"string": "x", "strings": "10.0.0.0/8", "int": "0", "float": "1",
            "duration": "1s"}[f["type"]]


def with_config_scope(flags):
    """{flag: 'applies' | 'config' | 'none'}: what the binary does with each flag
    when --config is given (it warns about the ones it does not apply)."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "config.conf")
        with open(cfg, "w", encoding="utf-8") as fh:
            fh.write("apiVersion: kubeproxy.config.k8s.io/v1alpha1\n"
                     "kind: KubeProxyConfiguration\n")
        written = os.path.join(tmp, "written.json")
        for f in flags:
            name = f["name"]
            if name in ("config", "write-config-to"):
                out[name] = "applies"
                continue
            v = probe_value(f)
            arg = f"--{name}" if v is None else f"--{name}={v}"
            args = [f"--config={cfg}", f"--write-config-to={written}"]
            if name != "hostname-override":
                args.append("--hostname-override=probe")
            # with --write-config-to the binary writes the file and exits before
            # any run mode; the sandbox is for the day that changes
            p = run_bin(*args, arg, sandbox=True)
            if f"flag --{name} has no effect" in p.stderr:
                out[name] = "none"
            elif f"flag --{name} is ignored: --config is set" in p.stderr:
                out[name] = "config"
            else:
                out[name] = "applies"
    return out


def written_config():
    """Flattened field paths of what --write-config-to writes."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.json")
        run_bin("--hostname-override=probe", f"--write-config-to={path}")
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    paths = set()

    def walk(prefix, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}{k}.", x)
                paths.add(prefix + k)
    walk("", doc)
    return paths


# ---- cmd/kpconfig.c ------------------------------------------------------

TABLE_RE = re.compile(r"static const struct field (\w+)\[\] = \{(.*?)\n\};", re.S)
ENTRY_RE = re.compile(r'\{\s*"(\w+)",\s*(C_\w+),\s*[^{}]*?,\s*(\w+)\s*\}')


def config_fields():
    """[(path, ctype)] of every KubeProxyConfiguration field cmd/kpconfig.c accepts."""
    with open(os.path.join(ROOT, "cmd/kpconfig.c"), encoding="utf-8") as fh:
        src = fh.read()
    tables = {name: ENTRY_RE.findall(body) for name, body in TABLE_RE.findall(src)}
    if "top_fields" not in tables:
        raise SystemExit("generate: cmd/kpconfig.c: no top_fields table found")
    out = []

    def walk(table, prefix):
        for key, ctype, sub in tables[table]:
            out.append((prefix + key, ctype))
            if ctype == "C_OBJECT":
                if sub not in tables:
                    raise SystemExit(f"generate: cmd/kpconfig.c: no table {sub}")
                walk(sub, f"{prefix}{key}.")
    walk("top_fields", "")
    return out


# ---- the generated blocks ------------------------------------------------


def md_escape(s):
    return s.replace("|", "\\|")


def gen_flags(flags, scope):
    words = {"applies": "applies", "config": "ignored: set it in config.conf",
             "none": "no effect"}
    lines = ["| flag | type | default | with `--config` | what it does |",
             "|---|---|---|---|---|"]
    group = None
    for f in flags:
        if f["group"] != group:
            group = f["group"]
            lines.append(f"| **{md_escape(group)}** | | | | |")
        name = f"`--{f['name']}`" + (f" (`-{f['short']}`)" if f["short"] else "")
        default = f"`{f['default']}`" if f["default"] not in (None, "") else ""
        lines.append(f"| {name} | {f['type'] or 'bool'} | {md_escape(default)} | "
                     f"{words[scope[f['name']]]} | {md_escape(f['help'])} |")
    return "\n".join(lines)


def gen_config(flags):
    by_name = {f["name"]: f for f in flags}
    written = written_config()
    fields = config_fields()
    lines = ["| field | kube-iptables-proxy | flag | what it does |", "|---|---|---|---|"]
    for path, ctype in fields:
        if path in ("apiVersion", "kind"):
            status = "required"
        elif ctype == "C_OBJECT":
            continue  # its fields have their own rows
        elif path in written and path not in FIELD_NO_EFFECT:
            status = "honoured"
        else:
            status = "ignored"
        flag = FIELD_FLAG.get(path)
        what = FIELD_NOTE.get(path, "")
        if not what and flag in by_name:
            what = by_name[flag]["help"]
        flag_col = f"`--{flag}`" if flag else ""
        lines.append(f"| `{path}` | {status} | {flag_col} | {md_escape(what)} |")
    return "\n".join(lines)


def gen_exit():
    man = run_bin("--man").stdout
    m = re.search(r"^\.SH EXIT STATUS\n(.*?)(?=^\.SH |\Z)", man, re.S | re.M)
    if not m:
        raise SystemExit("generate: --man has no EXIT STATUS section")
    text = m.group(1).replace("\\-", "-").strip()
    lines = ["| exit code | meaning |", "|---|---|"]
    for code, meaning in re.findall(r"(\d+): ([^;]+?)(?:;|\.?$)", text):
        lines.append(f"| {code} | {meaning.strip()} |")
    return "\n".join(lines)


def fill(text, name, body):
    begin, end = f"<!-- generated:{name}:begin -->", f"<!-- generated:{name}:end -->"
    pat = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pat.search(text):
        raise SystemExit(f"generate: no {begin} ... {end} block")
    return pat.sub(lambda _: f"{begin}\n{body}\n{end}", text, count=1)


# ---- manifests -------------------------------------------------------------


def version():
    with open(os.path.join(ROOT, "VERSION"), encoding="utf-8") as fh:
        return fh.read().strip()


def with_tag(text):
    return IMAGE_RE.sub(lambda m: f"{m.group(1)}v{version()}", text)


def kustomization_parts():
    with open(os.path.join(HERE, "kustomization.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)["resources"]


def gen_install(parts_text):
    out = ["# Generated by hack/deploy/generate.py from the files kustomization.yaml lists;",
           "# edit those and run the script. Needs the kube-proxy ConfigMap in kube-system",
           "# (kubeadm creates it; else see examples/kube-proxy-configmap.yaml).",
           "#",
           "#   kubectl apply -f hack/deploy/install.yaml"]
    for name in kustomization_parts():
        out.append("---")
        out.append(f"# Source: hack/deploy/{name}")
        out.append(parts_text[name].rstrip("\n"))
    return "\n".join(out) + "\n"


# ---- main --------------------------------------------------------------------


def targets():
    """{path: new text} for every generated file."""
    new = {}
    parts = {}
    tagged = [os.path.join(HERE, p) for p in kustomization_parts()]
    tagged.append(os.path.join(HERE, "examples/cleanup-pod.yaml"))
    for path in tagged:
        with open(path, encoding="utf-8") as fh:
            text = with_tag(fh.read())
        new[path] = text
        parts[os.path.relpath(path, HERE)] = text
    new[os.path.join(HERE, "install.yaml")] = gen_install(parts)

    flags = help_flags()
    blocks = {"flags": gen_flags(flags, with_config_scope(flags)),
              "config": gen_config(flags), "exit": gen_exit()}
    with open(README, encoding="utf-8") as fh:
        text = fh.read()
    b, e = text.find(SECTION_BEGIN), text.find(SECTION_END)
    if b < 0 or e < b:
        raise SystemExit(f"generate: README.md has no {SECTION_BEGIN} ... {SECTION_END}")
    for name, body in blocks.items():
        if f"<!-- generated:{name}:begin -->" not in text[b:e]:
            raise SystemExit(f"generate: README.md: the {name} block is not between the "
                             f"deploy-section markers")
        text = fill(text, name, body)
    new[README] = text
    return new


def main(argv):
    check = "--check" in argv
    stale = 0
    for path, text in targets().items():
        old = ""
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                old = fh.read()
        if old == text:
            continue
        rel = os.path.relpath(path, ROOT)
        if check:
            stale += 1
            diff = difflib.unified_diff(old.splitlines(True), text.splitlines(True),
                                        f"{rel} (checked in)", f"{rel} (generated)")
            sys.stdout.writelines(list(diff)[:80])
            print(f"generate: {rel} is stale: run hack/deploy/generate.py")
        else:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
            print(f"generate: wrote {rel}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
