#!/usr/bin/python3
"""Reference model of upstream kube-proxy (iptables mode, v1.33) *full* sync output.

This is a verification aid for the acceptance data in this directory, NOT the
normative expectation: the normative data is each case's upstream.rules (the
text upstream's tests assert).  The model exists so that

  * every hand-transcribed case can be checked for self-consistency: running the
    model on <case>/input.json with <case>/args must reproduce <case>/upstream.rules
    after canonical sorting (this catches typos in either file), and
  * the few "derived" cases (whose upstream test only checks packet flows or single
    lines) can be generated from the same logic that reproduces every asserted case.

It follows pkg/proxy/iptables/proxier.go (syncProxyRules, full sync, no stale
chains), pkg/proxy/serviceport.go, pkg/proxy/topology.go (CategorizeEndpoints),
pkg/proxy/endpointslicecache.go and pkg/proxy/util (nodePortAddresses, local
detectors) as read from the upstream sources.  It accepts the same input.json /
args as the C binary's --dump-rules mode (see ../README.md).

usage: refmodel.py INPUT.json [ARGS...]      (prints the iptables-restore payload)
"""

import base64
import hashlib
import ipaddress
import json
import re
import shlex
import sys

# --------------------------------------------------------------------------
# sloppy IP parsing (k8s.io/utils/net ParseIPSloppy / ParseCIDRSloppy)
# --------------------------------------------------------------------------


def parse_ip_sloppy(s):
    """IPv4 fields are decimal and may have leading zeros ("010" is 10)."""
    if s is None:
        return None
    if ':' in s:
        try:
            return ipaddress.IPv6Address(s)
        except ValueError:
            return None
    parts = s.split('.')
    if len(parts) != 4 or not all(re.fullmatch(r'[0-9]+', p) for p in parts):
        return None
    vals = [int(p, 10) for p in parts]
    if any(v > 255 for v in vals):
        return None
    return ipaddress.IPv4Address('.'.join(str(v) for v in vals))


def parse_cidr_sloppy(s):
    if '/' not in s:
        return None
    addr, plen = s.split('/', 1)
    ip = parse_ip_sloppy(addr)
    if ip is None or not re.fullmatch(r'[0-9]+', plen):
        return None
    n = int(plen, 10)
    maxlen = 32 if ip.version == 4 else 128
    if n > maxlen:
        return None
    return ipaddress.ip_network('%s/%d' % (ip, n), strict=False)


def family_of(ip):
    return 'IPv4' if ip.version == 4 else 'IPv6'


def join_host_port(ip, port):
    if ip.version == 6:
        return '[%s]:%d' % (ip, port)
    return '%s:%d' % (ip, port)


# --------------------------------------------------------------------------
# args
# --------------------------------------------------------------------------


class Config:
    def __init__(self):
        self.hostname = ''
        self.cluster_cidrs = []
        self.family = 'IPv4'
        self.random_fully = False
        self.nfacct = True
        self.masquerade_all = False
        self.localhost_nodeports = True
        self.nodeport_addresses = []
        self.detect_local_mode = None
        self.bridge = ''
        self.prefix = ''
        self.masq_bit = 14
        self.tcp_be_liberal = False
        self.gates = {}


def _bool(v):
    return {'true': True, 'false': False}[v.lower()]


def parse_args(argv):
    c = Config()
    for a in argv:
        if not a.startswith('--'):
            raise SystemExit('unexpected argument %r' % a)
        if '=' in a:
            k, v = a[2:].split('=', 1)
        else:
            k, v = a[2:], None
        if k == 'hostname-override':
            c.hostname = v
        elif k == 'cluster-cidr':
            c.cluster_cidrs = [x for x in v.split(',') if x]
        elif k == 'ip-family':
            c.family = {'ipv4': 'IPv4', 'ipv6': 'IPv6'}[v.lower()]
        elif k == 'iptables-random-fully':
            c.random_fully = True if v is None else _bool(v)
        elif k == 'iptables-nfacct':
            c.nfacct = True if v is None else _bool(v)
        elif k == 'masquerade-all':
            c.masquerade_all = True if v is None else _bool(v)
        elif k == 'iptables-localhost-nodeports':
            c.localhost_nodeports = True if v is None else _bool(v)
        elif k == 'nodeport-addresses':
            c.nodeport_addresses = [x for x in v.split(',') if x]
        elif k == 'detect-local-mode':
            c.detect_local_mode = v
        elif k == 'pod-bridge-interface':
            c.bridge = v
        elif k == 'pod-interface-name-prefix':
            c.prefix = v
        elif k == 'iptables-masquerade-bit':
            c.masq_bit = int(v)
        elif k == 'conntrack-tcp-be-liberal':
            c.tcp_be_liberal = True if v is None else _bool(v)
        elif k == 'feature-gates':
            for kv in v.split(','):
                if kv:
                    g, gv = kv.split('=')
                    c.gates[g] = _bool(gv)
        else:
            raise SystemExit('unknown flag %r' % a)
    return c


# --------------------------------------------------------------------------
# objects -> service ports / endpoints
# --------------------------------------------------------------------------


class SvcPort:
    pass


class Endpoint:
    def __init__(self, ip, port, is_local, ready, serving, terminating, zone_hints, node_hints):
        self.ip = ip
        self.port = port
        self.is_local = is_local
        self.ready = ready
        self.serving = serving
        self.terminating = terminating
        self.zone_hints = zone_hints
        self.node_hints = node_hints

    def string(self):
        return join_host_port(self.ip, self.port)


def port_proto_hash(s):
    return base64.b32encode(hashlib.sha256(s.encode()).digest()).decode()[:16]


def external_policy_local(svc):
    spec = svc.get('spec', {})
    if spec.get('type') not in ('LoadBalancer', 'NodePort'):
        return False
    return spec.get('externalTrafficPolicy') == 'Local'


def internal_policy_local(svc):
    return svc.get('spec', {}).get('internalTrafficPolicy') == 'Local'


def needs_health_check(svc):
    return svc.get('spec', {}).get('type') == 'LoadBalancer' and external_policy_local(svc)


def cluster_ip_by_family(svc, family):
    spec = svc.get('spec', {})
    fams = spec.get('ipFamilies') or []
    if not fams:
        cip = spec.get('clusterIP', '')
        if cip in ('', 'None'):
            return ''
        ip = parse_ip_sloppy(cip)
        is6 = ip is not None and ip.version == 6
        return cip if is6 == (family == 'IPv6') else ''
    cips = spec.get('clusterIPs') or []
    for i, f in enumerate(fams):
        if f == family and i < len(cips):
            return cips[i]
    return ''


def build_service_ports(items, cfg):
    out = {}
    for svc in items:
        if svc.get('kind') != 'Service':
            continue
        spec = svc.get('spec', {})
        if spec.get('clusterIP', '') in ('', 'None') or spec.get('type') == 'ExternalName':
            continue
        cip = cluster_ip_by_family(svc, cfg.family)
        if cip == '':
            continue
        meta = svc['metadata']
        nsn = '%s/%s' % (meta['namespace'], meta['name'])
        for p in spec.get('ports', []):
            sp = SvcPort()
            sp.nsn = nsn
            sp.port_name = p.get('name', '')
            sp.protocol = p.get('protocol', '')
            sp.name_string = nsn + (':' + sp.port_name if sp.port_name else '')
            proto = sp.protocol.lower()
            h = port_proto_hash(sp.name_string + proto)
            sp.svc_chain = 'KUBE-SVC-' + h
            sp.svl_chain = 'KUBE-SVL-' + h
            sp.fw_chain = 'KUBE-FW-' + h
            sp.ext_chain = 'KUBE-EXT-' + h
            sp.cluster_ip = parse_ip_sloppy(cip)
            sp.port = int(p.get('port', 0))
            sp.node_port = int(p.get('nodePort', 0))
            sp.affinity = spec.get('sessionAffinity', '')
            sp.sticky = 0
            if sp.affinity == 'ClientIP':
                sp.sticky = int(spec['sessionAffinityConfig']['clientIP']['timeoutSeconds'])
            sp.etp_local = external_policy_local(svc)
            sp.itp_local = internal_policy_local(svc)
            sp.external_ips = []
            for e in spec.get('externalIPs') or []:
                ip = parse_ip_sloppy(e)
                if ip is not None and family_of(ip) == cfg.family:
                    sp.external_ips.append(ip)
            sp.source_ranges = []
            for r in spec.get('loadBalancerSourceRanges') or []:
                n = parse_cidr_sloppy(r.strip())
                if n is not None and family_of(n.network_address) == cfg.family:
                    sp.source_ranges.append(n)
            sp.lb_vips = []
            for ing in (svc.get('status', {}).get('loadBalancer', {}).get('ingress') or []):
                if not ing.get('ip'):
                    continue
                if ing.get('ipMode') not in (None, 'VIP'):
                    continue
                ip = parse_ip_sloppy(ing['ip'])
                if ip is not None and family_of(ip) == cfg.family:
                    sp.lb_vips.append(ip)
            sp.hc_node_port = int(spec.get('healthCheckNodePort', 0)) if needs_health_check(svc) else 0
            sp.key = (nsn, sp.port_name, sp.protocol)
            out[sp.key] = sp
    return out


def build_endpoints(items, cfg):
    eps = {}  # key (nsn, portname, proto) -> {string: Endpoint}
    prefer_same = cfg.gates.get('PreferSameTrafficDistribution', False)
    slices = [i for i in items if i.get('kind') == 'EndpointSlice']
    slices.sort(key=lambda s: (s['metadata']['namespace'], s['metadata']['name']))
    for sl in slices:
        meta = sl['metadata']
        svc_name = (meta.get('labels') or {}).get('kubernetes.io/service-name')
        if not svc_name:
            continue
        if sl.get('addressType') not in ('IPv4', 'IPv6'):
            continue
        nsn = '%s/%s' % (meta['namespace'], svc_name)
        for port in sl.get('ports') or []:
            if 'name' not in port or port['name'] is None:
                continue
            if not port.get('port'):
                continue
            key = (nsn, port['name'], port.get('protocol'))
            eset = eps.setdefault(key, {})
            for ep in sl.get('endpoints') or []:
                addrs = ep.get('addresses') or []
                if not addrs:
                    continue
                ip = parse_ip_sloppy(addrs[0])
                if ip is None or family_of(ip) != cfg.family:
                    continue
                cond = ep.get('conditions') or {}
                ready = cond.get('ready') is None or cond.get('ready')
                serving = cond.get('serving') is None or cond.get('serving')
                terminating = cond.get('terminating') is not None and cond.get('terminating')
                is_local = ep.get('nodeName') is not None and ep.get('nodeName') == cfg.hostname
                hints = ep.get('hints') or {}
                zone_hints = set(z['name'] for z in hints.get('forZones') or [])
                node_hints = set(n['name'] for n in hints.get('forNodes') or []) if prefer_same else set()
                e = Endpoint(ip, int(port['port']), is_local, ready, serving, terminating, zone_hints, node_hints)
                s = e.string()
                if s not in eset or is_local:
                    eset[s] = e
    return {k: sorted(v.values(), key=lambda e: e.string()) for k, v in eps.items()}


def categorize(endpoints, sp, node_name, zone, cfg):
    uses_cluster = (not sp.itp_local) or externally_accessible(sp)
    uses_local = sp.itp_local or (sp.etp_local and externally_accessible(sp))
    topo = ''
    cluster = None
    local = None
    has_any = False
    serving_term = False
    if uses_cluster:
        topo = topology_mode(endpoints, node_name, zone, cfg)
        cluster = [e for e in endpoints if e.ready and available_for_topology(e, topo, node_name, zone)]
        if not cluster:
            cluster = [e for e in endpoints if e.serving and e.terminating]
        if cluster:
            has_any = True
    if not uses_local:
        return cluster or [], [], cluster or [], has_any
    has_local_ready = has_local_st = False
    for e in endpoints:
        if e.ready:
            has_any = True
            if e.is_local:
                has_local_ready = True
        elif e.serving and e.terminating:
            has_any = True
            if e.is_local:
                has_local_st = True
    local = []
    if has_local_ready:
        local = [e for e in endpoints if e.is_local and e.ready]
    elif has_local_st:
        serving_term = True
        local = [e for e in endpoints if e.is_local and e.serving and e.terminating]
    if not uses_cluster:
        return [], local, local, has_any
    if topo == '' and not serving_term:
        return cluster, local, cluster, has_any
    merged = {}
    for e in cluster:
        merged[e.string()] = e
    for e in local:
        merged[e.string()] = e
    return cluster, local, sorted(merged.values(), key=lambda e: e.string()), has_any


def topology_mode(endpoints, node_name, zone, cfg):
    has_node = False
    all_node = True
    has_zone = False
    all_zone = True
    for e in endpoints:
        if not e.ready:
            continue
        if not e.node_hints:
            all_node = False
        elif node_name in e.node_hints:
            has_node = True
        if not e.zone_hints:
            all_zone = False
        elif zone in e.zone_hints:
            has_zone = True
    if cfg.gates.get('PreferSameTrafficDistribution', False):
        if all_node and has_node:
            return 'PreferSameNode'
    if all_zone and has_zone:
        return 'PreferSameZone'
    return ''


def available_for_topology(e, mode, node_name, zone):
    if mode == '':
        return True
    if mode == 'PreferSameNode':
        return node_name in e.node_hints
    if mode == 'PreferSameZone':
        return zone in e.zone_hints
    return False


def externally_accessible(sp):
    return sp.node_port != 0 or bool(sp.lb_vips) or bool(sp.external_ips)


# --------------------------------------------------------------------------
# syncProxyRules (full sync)
# --------------------------------------------------------------------------


def q(s):
    return '"%s"' % s


def render(items, cfg):
    node = None
    for i in items:
        if i.get('kind') == 'Node' and i['metadata']['name'] == cfg.hostname:
            node = i
    node_labels = (node or {}).get('metadata', {}).get('labels') or {}
    node_addrs = []
    for a in ((node or {}).get('status', {}).get('addresses') or []):
        if a.get('type') == 'InternalIP':
            ip = parse_ip_sloppy(a['address'])
            if ip is not None:
                node_addrs.append(ip)
    node_ip = next((ip for ip in node_addrs if family_of(ip) == cfg.family), None)
    iface_addrs = node_addrs + [ipaddress.ip_address('127.0.0.1'), ipaddress.ip_address('::1')]
    is6 = cfg.family == 'IPv6'

    # nodePortAddresses
    npa_cidrs = []
    contains_v4_loopback = False
    for s in cfg.nodeport_addresses:
        if s == 'primary':
            if node_ip is not None:
                npa_cidrs.append(ipaddress.ip_network('%s/%d' % (node_ip, 32 if node_ip.version == 4 else 128)))
            continue
        n = parse_cidr_sloppy(s)
        if n is None:
            continue
        if n.version == 4 and (n.network_address.is_loopback or ipaddress.ip_address('127.0.0.1') in n):
            contains_v4_loopback = True
        if family_of(n.network_address) == cfg.family:
            npa_cidrs.append(n)
    match_all = not npa_cidrs
    if match_all:
        contains_v4_loopback = True
    localhost = cfg.localhost_nodeports and contains_v4_loopback and not is6

    # local detector
    cidrs = [n for n in (parse_cidr_sloppy(c) for c in cfg.cluster_cidrs) if n is not None and family_of(n.network_address) == cfg.family]
    mode = cfg.detect_local_mode or ('ClusterCIDR' if cidrs else None)
    if_local = if_not_local = None
    if mode in ('ClusterCIDR', 'NodeCIDR') and cidrs:
        if_local = ['-s', str(cidrs[0])]
        if_not_local = ['!', '-s', str(cidrs[0])]
    elif mode == 'BridgeInterface' and cfg.bridge:
        if_local = ['-i', cfg.bridge]
        if_not_local = ['!', '-i', cfg.bridge]
    elif mode == 'InterfaceNamePrefix' and cfg.prefix:
        if_local = ['-i', cfg.prefix + '+']
        if_not_local = ['!', '-i', cfg.prefix + '+']

    # Go fmt.Sprintf("%#08x", v): eight zero-padded digits, then the 0x prefix
    mark = '0x%08x' % (1 << cfg.masq_bit)
    nfacct_invalid = cfg.nfacct
    nfacct_localhost = cfg.nfacct

    filter_chains, filter_rules, nat_chains, nat_rules = [], [], [], []

    def w(buf, *args):
        flat = []
        for a in args:
            if isinstance(a, (list, tuple)):
                flat.extend(a)
            else:
                flat.append(a)
        buf.append(' '.join(flat))

    for c in ('KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-FORWARD', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'):
        filter_chains.append(':%s - [0:0]' % c)
    for c in ('KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING', 'KUBE-MARK-MASQ'):
        nat_chains.append(':%s - [0:0]' % c)
    w(nat_rules, '-A', 'KUBE-POSTROUTING', '-m', 'mark', '!', '--mark', '%s/%s' % (mark, mark), '-j', 'RETURN')
    w(nat_rules, '-A', 'KUBE-POSTROUTING', '-j', 'MARK', '--xor-mark', mark)
    masq = ['-A', 'KUBE-POSTROUTING', '-m', 'comment', '--comment', q('kubernetes service traffic requiring SNAT'), '-j', 'MASQUERADE']
    if cfg.random_fully:
        masq.append('--random-fully')
    w(nat_rules, masq)
    w(nat_rules, '-A', 'KUBE-MARK-MASQ', '-j', 'MARK', '--or-mark', mark)
    if not is6 and localhost:
        filter_chains.append(':KUBE-FIREWALL - [0:0]')
        w(filter_rules, '-A', 'KUBE-FIREWALL', '-m', 'comment', '--comment', q('block incoming localnet connections'),
          '-d', '127.0.0.0/8', '!', '-s', '127.0.0.0/8', '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED,DNAT', '-j', 'DROP')

    svc_ports = build_service_ports(items, cfg)
    endpoints = build_endpoints(items, cfg)
    total = sum(len(endpoints.get(k, [])) for k in svc_ports)
    large = total > 1000

    def svc_comment(args, comment):
        return args if large else args + ['-m', 'comment', '--comment', comment]

    zone = node_labels.get('topology.kubernetes.io/zone', '')

    for key in sorted(svc_ports):
        sp = svc_ports[key]
        proto = sp.protocol.lower()
        sname = sp.name_string
        all_eps = endpoints.get(key, [])
        cluster_eps, local_eps, reachable, has_eps = categorize(all_eps, sp, cfg.hostname, zone, cfg)
        uses_cluster_chain = len(cluster_eps) > 0 and ((not sp.itp_local) or externally_accessible(sp))
        uses_local_chain = len(local_eps) > 0 and (sp.itp_local or (sp.etp_local and externally_accessible(sp)))
        internal_chain = sp.svc_chain
        has_internal = has_eps
        if sp.itp_local:
            internal_chain = sp.svl_chain
            if not local_eps:
                has_internal = False
        external_policy_chain = sp.svc_chain
        has_external = has_eps
        if sp.etp_local:
            external_policy_chain = sp.svl_chain
            if not local_eps:
                has_external = False
        uses_ext = has_eps and externally_accessible(sp)
        uses_fw = has_eps and bool(sp.lb_vips) and bool(sp.source_ranges)
        lb_chain = sp.fw_chain if uses_fw else sp.ext_chain
        if not has_eps:
            it, ic = 'REJECT', q('%s has no endpoints' % sname)
            et, ec = it, ic
        else:
            it = ic = et = ec = None
            if not has_internal:
                it, ic = 'DROP', q('%s has no local endpoints' % sname)
            if not has_external:
                et, ec = 'DROP', q('%s has no local endpoints' % sname)
        port = str(sp.port)
        cip = str(sp.cluster_ip)
        if has_internal:
            w(nat_rules, '-A', 'KUBE-SERVICES', '-m', 'comment', '--comment', q('%s cluster IP' % sname),
              '-m', proto, '-p', proto, '-d', cip, '--dport', port, '-j', internal_chain)
        else:
            w(filter_rules, '-A', 'KUBE-SERVICES', '-m', 'comment', '--comment', ic,
              '-m', proto, '-p', proto, '-d', cip, '--dport', port, '-j', it)
        for eip in sp.external_ips:
            if has_eps:
                w(nat_rules, '-A', 'KUBE-SERVICES', '-m', 'comment', '--comment', q('%s external IP' % sname),
                  '-m', proto, '-p', proto, '-d', str(eip), '--dport', port, '-j', sp.ext_chain)
            if not has_external:
                w(filter_rules, '-A', 'KUBE-EXTERNAL-SERVICES', '-m', 'comment', '--comment', ec,
                  '-m', proto, '-p', proto, '-d', str(eip), '--dport', port, '-j', et)
        for lbip in sp.lb_vips:
            if has_eps:
                w(nat_rules, '-A', 'KUBE-SERVICES', '-m', 'comment', '--comment', q('%s loadbalancer IP' % sname),
                  '-m', proto, '-p', proto, '-d', str(lbip), '--dport', port, '-j', lb_chain)
            if uses_fw:
                w(filter_rules, '-A', 'KUBE-PROXY-FIREWALL', '-m', 'comment', '--comment',
                  q('%s traffic not accepted by %s' % (sname, sp.fw_chain)),
                  '-m', proto, '-p', proto, '-d', str(lbip), '--dport', port, '-j', 'DROP')
        if not has_external:
            for lbip in sp.lb_vips:
                w(filter_rules, '-A', 'KUBE-EXTERNAL-SERVICES', '-m', 'comment', '--comment', ec,
                  '-m', proto, '-p', proto, '-d', str(lbip), '--dport', port, '-j', et)
        if sp.node_port != 0:
            if has_eps:
                if localhost and not is6 and nfacct_localhost:
                    w(nat_rules, '-A', 'KUBE-NODEPORTS', '-m', 'comment', '--comment', sname,
                      '-m', proto, '-p', proto, '-d', '127.0.0.0/8', '--dport', str(sp.node_port),
                      '-m', 'nfacct', '--nfacct-name', 'localhost_nps_accepted_pkts', '-j', sp.ext_chain)
                w(nat_rules, '-A', 'KUBE-NODEPORTS', '-m', 'comment', '--comment', sname,
                  '-m', proto, '-p', proto, '--dport', str(sp.node_port), '-j', sp.ext_chain)
            if not has_external:
                w(filter_rules, '-A', 'KUBE-EXTERNAL-SERVICES', '-m', 'comment', '--comment', ec,
                  '-m', 'addrtype', '--dst-type', 'LOCAL', '-m', proto, '-p', proto,
                  '--dport', str(sp.node_port), '-j', et)
        if sp.hc_node_port != 0:
            w(filter_rules, '-A', 'KUBE-NODEPORTS', '-m', 'comment', '--comment', q('%s health check node port' % sname),
              '-m', 'tcp', '-p', 'tcp', '--dport', str(sp.hc_node_port), '-j', 'ACCEPT')

        if has_internal:
            args = ['-m', 'comment', '--comment', q('%s cluster IP' % sname), '-m', proto, '-p', proto,
                    '-d', cip, '--dport', port]
            if cfg.masquerade_all:
                w(nat_rules, '-A', internal_chain, args, '-j', 'KUBE-MARK-MASQ')
            elif if_not_local is not None:
                w(nat_rules, '-A', internal_chain, args, if_not_local, '-j', 'KUBE-MARK-MASQ')
        if uses_ext:
            nat_chains.append(':%s - [0:0]' % sp.ext_chain)
            if not sp.etp_local:
                w(nat_rules, '-A', sp.ext_chain, '-m', 'comment', '--comment',
                  q('masquerade traffic for %s external destinations' % sname), '-j', 'KUBE-MARK-MASQ')
            else:
                if if_local is not None:
                    w(nat_rules, '-A', sp.ext_chain, '-m', 'comment', '--comment',
                      q('pod traffic for %s external destinations' % sname), if_local, '-j', sp.svc_chain)
                w(nat_rules, '-A', sp.ext_chain, '-m', 'comment', '--comment',
                  q('masquerade LOCAL traffic for %s external destinations' % sname),
                  '-m', 'addrtype', '--src-type', 'LOCAL', '-j', 'KUBE-MARK-MASQ')
                w(nat_rules, '-A', sp.ext_chain, '-m', 'comment', '--comment',
                  q('route LOCAL traffic for %s external destinations' % sname),
                  '-m', 'addrtype', '--src-type', 'LOCAL', '-j', sp.svc_chain)
            if has_external:
                w(nat_rules, '-A', sp.ext_chain, '-j', external_policy_chain)
        if uses_fw:
            nat_chains.append(':%s - [0:0]' % sp.fw_chain)
            fargs = ['-A', sp.fw_chain, '-m', 'comment', '--comment', q('%s loadbalancer IP' % sname)]
            allow_from_node = False
            for cidr in sp.source_ranges:
                w(nat_rules, fargs, '-s', str(cidr), '-j', sp.ext_chain)
                if node_ip is not None and node_ip.version == cidr.version and node_ip in cidr:
                    allow_from_node = True
            if allow_from_node:
                for lbip in sp.lb_vips:
                    w(nat_rules, fargs, '-s', str(lbip), '-j', sp.ext_chain)
            w(nat_rules, '-A', sp.fw_chain, '-m', 'comment', '--comment',
              q('other traffic to %s will be dropped by KUBE-PROXY-FIREWALL' % sname))

        def sep_chain(e):
            return 'KUBE-SEP-' + port_proto_hash(sname + proto + e.string())

        def ep_rules(chain, eps):
            if sp.affinity == 'ClientIP':
                for e in eps:
                    a = svc_comment(['-A', chain], q('%s -> %s' % (sname, e.string())))
                    w(nat_rules, a, '-m', 'recent', '--name', sep_chain(e), '--rcheck', '--seconds', str(sp.sticky),
                      '--reap', '-j', sep_chain(e))
            n = len(eps)
            for i, e in enumerate(eps):
                a = svc_comment(['-A', chain], q('%s -> %s' % (sname, e.string())))
                if i < n - 1:
                    a = a + ['-m', 'statistic', '--mode', 'random', '--probability', '%0.10f' % (1.0 / (n - i))]
                w(nat_rules, a, '-j', sep_chain(e))

        if uses_cluster_chain:
            nat_chains.append(':%s - [0:0]' % sp.svc_chain)
            ep_rules(sp.svc_chain, cluster_eps)
        if uses_local_chain:
            nat_chains.append(':%s - [0:0]' % sp.svl_chain)
            ep_rules(sp.svl_chain, local_eps)
        for e in reachable:
            ch = sep_chain(e)
            nat_chains.append(':%s - [0:0]' % ch)
            a = svc_comment(['-A', ch], sname)
            w(nat_rules, a, '-s', str(e.ip), '-j', 'KUBE-MARK-MASQ')
            if sp.affinity == 'ClientIP':
                a = a + ['-m', 'recent', '--name', ch, '--set']
            w(nat_rules, a, '-m', proto, '-p', proto, '-j', 'DNAT', '--to-destination', e.string())

    last = q('kubernetes service nodeports; NOTE: this must be the last rule in this chain')
    if match_all:
        dest = ['-m', 'addrtype', '--dst-type', 'LOCAL']
        if is6:
            dest += ['!', '-d', '::1/128']
        elif not localhost:
            dest += ['!', '-d', '127.0.0.0/8']
        w(nat_rules, '-A', 'KUBE-SERVICES', '-m', 'comment', '--comment', last, dest, '-j', 'KUBE-NODEPORTS')
    else:
        ips = {}
        for cidr in npa_cidrs:
            for ip in iface_addrs:
                if ip.version == cidr.version and ip in cidr:
                    ips[str(ip)] = ip
        # upstream iterates a Go map here: the order is unspecified
        for s in sorted(ips):
            ip = ips[s]
            if ip.is_loopback and (is6 or not localhost):
                continue
            w(nat_rules, '-A', 'KUBE-SERVICES', '-m', 'comment', '--comment', last, '-d', s, '-j', 'KUBE-NODEPORTS')
    if not cfg.tcp_be_liberal:
        r = ['-A', 'KUBE-FORWARD', '-m', 'conntrack', '--ctstate', 'INVALID']
        if nfacct_invalid:
            r += ['-m', 'nfacct', '--nfacct-name', 'ct_state_invalid_dropped_pkts']
        w(filter_rules, r, '-j', 'DROP')
    w(filter_rules, '-A', 'KUBE-FORWARD', '-m', 'comment', '--comment', q('kubernetes forwarding rules'),
      '-m', 'mark', '--mark', '%s/%s' % (mark, mark), '-j', 'ACCEPT')
    w(filter_rules, '-A', 'KUBE-FORWARD', '-m', 'comment', '--comment', q('kubernetes forwarding conntrack rule'),
      '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT')

    out = ['*filter'] + filter_chains + filter_rules + ['COMMIT', '*nat'] + nat_chains + nat_rules + ['COMMIT']
    return '\n'.join(out) + '\n'


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding='utf-8') as f:
        doc = json.load(f)
    rest = argv[2:]
    if len(rest) == 1 and ' ' in rest[0]:
        rest = shlex.split(rest[0])
    cfg = parse_args(rest)
    sys.stdout.write(render(doc.get('items', []), cfg))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
