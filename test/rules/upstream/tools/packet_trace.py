#!/usr/bin/python3
"""Upstream's iptables packet tracer (proxier_test.go tracePacket /
runPacketFlowTests), re-implemented over the parser in ../iptables_sort.py.

Given an iptables-restore payload of a full sync and a flows.json file holding
upstream's packetFlowTest expectations, check each flow.  The tracer semantics are
upstream's, including its simplifications:

  * nat PREROUTING contains kube-proxy's jump to KUBE-SERVICES (ensured on full
    syncs), so tracing starts in nat KUBE-SERVICES;
  * only rules with "-j" are evaluated; -s/-d (IP or CIDR, "!" honoured),
    --src-type/--dst-type LOCAL (LOCAL = 127.0.0.1, ::1 and the flow file's
    nodeIPs), -p and --dport are matched; rules with --rcheck, --mark or --ctstate
    never match; everything else (statistic, comment, nfacct, recent --set) matches;
  * KUBE-MARK-MASQ sets masq and continues; ACCEPT/REJECT/DROP/DNAT record an
    output and terminate; any other target recurses, and terminates the caller only
    if the jumping rule had no --probability;
  * after nat, the destination becomes the host part of the first output
    (text before the first ':'), then filter KUBE-SERVICES, KUBE-EXTERNAL-SERVICES,
    KUBE-NODEPORTS and KUBE-PROXY-FIREWALL are run.

flows.json: {"nodeIPs": [...], "flows": [{"name", "sourceIP", "protocol"?,
             "destIP", "destPort", "output", "masq"?}, ...]}

usage: packet_trace.py RULES FLOWS.json      (exit 1 if any flow fails)
"""

import ipaddress
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import iptables_sort  # noqa: E402


class TraceError(Exception):
    pass


def _ip(s):
    try:
        return ipaddress.ip_address(s)
    except ValueError:
        raise TraceError('bad IP %r' % s)


def address_matches(value, ip_str):
    negated, v = value
    ip = _ip(ip_str)
    if '/' in v:
        net = ipaddress.ip_network(v, strict=False)
        matches = net.version == ip.version and ip in net
    else:
        other = _ip(v)
        matches = other.version == ip.version and other == ip
    return matches != negated


def value_matches(value, s):
    negated, v = value
    return (v != s) if negated else (v == s)


class Tracer:
    def __init__(self, dump, node_ips):
        self.dump = dump
        self.local_ips = {'127.0.0.1', '::1'} | set(node_ips)
        self.matches = []
        self.outputs = []
        self.masq = False

    def rule_matches(self, r, src, proto, dst, dport):
        f = r.fields
        if '-s' in f and not address_matches(f['-s'], src):
            return False
        if '--src-type' in f:
            t = 'LOCAL' if src in self.local_ips else 'not-matched'
            if not value_matches(f['--src-type'], t):
                return False
        if '-p' in f and not value_matches(f['-p'], proto):
            return False
        if '-d' in f and not address_matches(f['-d'], dst):
            return False
        if '--dst-type' in f:
            t = 'LOCAL' if dst in self.local_ips else 'not-matched'
            if not value_matches(f['--dst-type'], t):
                return False
        if '--dport' in f and not value_matches(f['--dport'], dport):
            return False
        if '--rcheck' in f or '--mark' in f or '--ctstate' in f:
            return False
        return True

    def run_chain(self, table, chain, src, proto, dst, dport):
        c = self.dump.get_chain(table, chain)
        if c is None:
            return False
        for r in c.rules:
            if '-j' not in r.fields:
                continue
            if not self.rule_matches(r, src, proto, dst, dport):
                continue
            self.matches.append(r.raw)
            target = r.fields['-j'][1]
            if target == 'KUBE-MARK-MASQ':
                self.masq = True
                continue
            if target in ('ACCEPT', 'REJECT', 'DROP'):
                self.outputs.append(target)
                return True
            if target == 'DNAT':
                self.outputs.append(r.fields['--to-destination'][1])
                return True
            terminated = self.run_chain(table, target, src, proto, dst, dport)
            if terminated and '--probability' not in r.fields:
                return True
        return False


def trace(dump, src, proto, dst, dport, node_ips):
    t = Tracer(dump, node_ips)
    t.run_chain('nat', 'KUBE-SERVICES', src, proto, dst, dport)  # via PREROUTING
    if t.outputs:
        dst = t.outputs[0].split(':')[0]
    for chain in ('KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-PROXY-FIREWALL'):
        t.run_chain('filter', chain, src, proto, dst, dport)
    return t.matches, ', '.join(t.outputs), t.masq


def run_flows(rules_text, flows_doc):
    dump = iptables_sort.parse_dump(rules_text.lstrip(' \t\n'))
    failures = []
    for fl in flows_doc['flows']:
        proto = (fl.get('protocol') or 'TCP').lower()
        try:
            matches, output, masq = trace(dump, fl['sourceIP'], proto, fl['destIP'], str(fl['destPort']),
                                          flows_doc['nodeIPs'])
        except TraceError as e:
            failures.append('%s: %s' % (fl['name'], e))
            continue
        errs = []
        if output != fl['output']:
            errs.append('wrong output: expected %r got %r' % (fl['output'], output))
        if masq != fl.get('masq', False):
            errs.append('wrong masq: expected %s got %s' % (fl.get('masq', False), masq))
        if errs:
            failures.append('%s (%s %s -> %s:%s): %s\n  matched:\n    %s' % (
                fl['name'], proto, fl['sourceIP'], fl['destIP'], fl['destPort'], '; '.join(errs),
                '\n    '.join(matches)))
    return failures


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1], encoding='utf-8') as f:
        rules = f.read()
    with open(argv[2], encoding='utf-8') as f:
        flows = json.load(f)
    failures = run_flows(iptables_sort.short_marks(rules), flows)
    for msg in failures:
        print('FAIL %s' % msg)
    print('%d flows, %d failed' % (len(flows['flows']), len(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
