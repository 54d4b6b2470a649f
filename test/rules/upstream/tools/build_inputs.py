#!/usr/bin/python3
"""Writes <case>/input.json, <case>/args and <case>/SOURCE for every case.

The objects below mirror, field by field, what the named upstream test constructs
(makeTestService / makeTestEndpointSlice / literal v1.Service and
discovery.EndpointSlice values).  Conventions:

  * A field the Go test leaves at its zero value / nil pointer is left out of the
    JSON (so endpoint "conditions" is {} when the test sets none: absent is not
    false).  Service "type", "externalTrafficPolicy", "targetPort" etc. appear only
    when the test sets them, exactly as set (e.g. no "type" for services the test
    leaves typeless).
  * EndpointSlice names follow makeTestEndpointSlice: "<service>-<n>".
  * A port name set with ptr.To("") is kept as "name": "" (non-nil pointer).
  * The fake proxier's node is the Node object "test-node" (see README.md).  Older
    upstream tests call it "test-hostname"; it is renamed to "test-node" both as
    the proxier's node and in every endpoint nodeName that used it (node names never
    appear in the rules).
  * upstream.rules is NOT written here: asserted cases are transcribed by hand from
    the test literal; derived cases are produced by tools/derive.py.

usage: build_inputs.py [CASES_DIR]     (default: the directory above tools/)
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

NODE_ADDRESSES = ['192.168.0.2', '192.168.1.2', '192.168.99.11', '2001:db8::1', '2001:db8:1::2']

BASE = ['--hostname-override=test-node', '--cluster-cidr=10.0.0.0/8', '--ip-family=ipv4',
        '--iptables-random-fully=false', '--iptables-nfacct=true']

MASTER = ('kubernetes/kubernetes pkg/proxy/iptables/proxier_test.go, recent master '
          '(search-index file id 191206484; v1.33+: has nfacct, PreferSameTrafficDistribution)')
OLDER = ('upstream pkg/proxy/iptables test text of the v1.28 development cycle, as stored in the '
         'search index in the fork danwinship/kubernetes at pkg/proxy/iptables/rules_test.go '
         '(index id 44324665236, commit 07fb8ceb0fc1d962cc2a752b8239a3a0702a3601; the fork split '
         'proxier_test.go into rules_test.go + helpers_test.go, test bodies unchanged).  '
         'The index keeps no older kubernetes/kubernetes revision of proxier_test.go that can be '
         'addressed, and upstream master turned these tests into packet-flow-only tests.')


def args(*extra, nfacct=True, cluster_cidr='10.0.0.0/8', family='ipv4'):
    a = ['--hostname-override=test-node', '--cluster-cidr=%s' % cluster_cidr,
         '--ip-family=%s' % family, '--iptables-random-fully=false',
         '--iptables-nfacct=%s' % ('true' if nfacct else 'false')]
    for e in extra:
        if e.startswith('--iptables-random-fully='):
            a[3] = e
        else:
            a.append(e)
    return ' '.join(a)


def node(labels=None):
    meta = {'name': 'test-node'}
    if labels:
        meta['labels'] = labels
    return {
        'apiVersion': 'v1', 'kind': 'Node', 'metadata': meta,
        'status': {'addresses': [{'type': 'InternalIP', 'address': a} for a in NODE_ADDRESSES]},
    }


def port(name=None, protocol='TCP', port=None, node_port=None, target_port=None):
    p = {}
    if name:  # ServicePort.Name is a plain string with omitempty
        p['name'] = name
    if protocol is not None:
        p['protocol'] = protocol
    if port is not None:
        p['port'] = port
    if target_port is not None:
        p['targetPort'] = target_port
    if node_port is not None:
        p['nodePort'] = node_port
    return p


def service(ns, name, cluster_ip, ports, type_=None, etp=None, itp=None, external_ips=None,
            lb_ingress=None, source_ranges=None, hc_node_port=None, affinity_timeout=None,
            selector=None, lb_ip=None):
    spec = {}
    if selector is not None:
        spec['selector'] = selector
    if type_ is not None:
        spec['type'] = type_
    spec['clusterIP'] = cluster_ip
    spec['ports'] = ports
    if external_ips is not None:
        spec['externalIPs'] = external_ips
    if lb_ip is not None:
        spec['loadBalancerIP'] = lb_ip
    if source_ranges is not None:
        spec['loadBalancerSourceRanges'] = source_ranges
    if etp is not None:
        spec['externalTrafficPolicy'] = etp
    if itp is not None:
        spec['internalTrafficPolicy'] = itp
    if hc_node_port is not None:
        spec['healthCheckNodePort'] = hc_node_port
    if affinity_timeout is not None:
        spec['sessionAffinity'] = 'ClientIP'
        spec['sessionAffinityConfig'] = {'clientIP': {'timeoutSeconds': affinity_timeout}}
    obj = {'apiVersion': 'v1', 'kind': 'Service',
           'metadata': {'name': name, 'namespace': ns}, 'spec': spec}
    if lb_ingress is not None:
        obj['status'] = {'loadBalancer': {'ingress': lb_ingress}}
    return obj


def ep(ip, node_name=None, ready=None, serving=None, terminating=None, zone=None,
       for_zones=None, for_nodes=None):
    e = {'addresses': [ip]}
    cond = {}
    if ready is not None:
        cond['ready'] = ready
    if serving is not None:
        cond['serving'] = serving
    if terminating is not None:
        cond['terminating'] = terminating
    e['conditions'] = cond
    if node_name is not None:
        e['nodeName'] = node_name
    if zone is not None:
        e['zone'] = zone
    if for_zones is not None or for_nodes is not None:
        h = {}
        if for_zones is not None:
            h['forZones'] = [{'name': z} for z in for_zones]
        if for_nodes is not None:
            h['forNodes'] = [{'name': n} for n in for_nodes]
        e['hints'] = h
    return e


def eport(name, port, protocol='TCP'):
    return {'name': name, 'port': port, 'protocol': protocol}


def slice_(ns, svc, num, endpoints, ports, address_type='IPv4'):
    return {
        'apiVersion': 'discovery.k8s.io/v1', 'kind': 'EndpointSlice',
        'metadata': {'name': '%s-%d' % (svc, num), 'namespace': ns,
                     'labels': {'kubernetes.io/service-name': svc}},
        'addressType': address_type,
        'endpoints': endpoints,
        'ports': ports,
    }


CASES = {}


def case(name, items, argv, source, kind):
    assert name not in CASES, name
    CASES[name] = (items, argv, source, kind)


TN = 'test-node'

# ===========================================================================
# A. asserted by upstream master (v1.33+), nfacct counters present
# ===========================================================================

case('overall-iptables-rules', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80)]),
    service('ns2', 'svc2', '172.30.0.42', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            etp='Local', lb_ingress=[{'ip': '1.2.3.4'}], external_ips=['192.168.99.22'], hc_node_port=30000),
    service('ns3', 'svc3', '172.30.0.43', [port('p80', 'TCP', 80, node_port=3003)], type_='NodePort'),
    service('ns4', 'svc4', '172.30.0.44', [port('p80', 'TCP', 80, target_port=80)], type_='NodePort',
            external_ips=['192.168.99.33']),
    service('ns5', 'svc5', '172.30.0.45', [port('p80', 'TCP', 80, node_port=3002)], type_='LoadBalancer',
            etp='Cluster', lb_ingress=[{'ip': '5.6.7.8'}], hc_node_port=30000,
            source_ranges=[' 203.0.113.0/25'], affinity_timeout=10800),
    service('ns6', 'svc6', '172.30.0.46', [port('p80', 'TCP', 80, target_port=80)], type_='ClusterIP'),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1')], [eport('p80', 80)]),
    slice_('ns2', 'svc2', 1, [ep('10.180.0.2')], [eport('p80', 80)]),
    slice_('ns3', 'svc3', 1, [ep('10.180.0.3')], [eport('p80', 80)]),
    slice_('ns4', 'svc4', 1, [ep('10.180.0.4'), ep('10.180.0.5', TN)], [eport('p80', 80)]),
    slice_('ns5', 'svc5', 1, [ep('10.180.0.3')], [eport('p80', 80)]),
], args(), 'TestOverallIPTablesRules: ClusterIP, LB eTP=Local (no local endpoints) with externalIP and '
   'health check port, NodePort, NodePort+externalIP, LB eTP=Cluster with source range and ClientIP '
   'affinity, ClusterIP without endpoints.\nSource: ' + MASTER, 'asserted')

case('bad-ips', [
    node(),
    service('ns1', 'svc1', '172.30.0.041', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            lb_ingress=[{'ip': '1.2.3.004'}], external_ips=['192.168.099.022'],
            source_ranges=['203.0.113.000/025']),
    slice_('ns1', 'svc1', 1, [ep('10.180.00.001')], [eport('p80', 80)]),
], args(), 'TestBadIPs: leading-zero IPs/CIDRs in ClusterIP, LB ingress, externalIPs, source ranges and '
   'endpoint addresses are parsed sloppily and printed canonical.\nSource: ' + MASTER, 'asserted')

case('sync-proxy-rules-repeated-initial', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80)], type_='ClusterIP'),
    service('ns2', 'svc2', '172.30.0.42', [port('p8080', 'TCP', 8080)], type_='ClusterIP'),
    slice_('ns1', 'svc1', 1, [ep('10.0.1.1')], [eport('p80', 80)]),
    slice_('ns2', 'svc2', 1, [ep('10.0.2.1')], [eport('p8080', 8080)]),
], args(), 'TestSyncProxyRulesRepeated, first (full) sync only: two ClusterIP services.  The later '
   'partial syncs of this test are described in ../PARTIAL-SYNC-CASES.md.\nSource: ' + MASTER, 'asserted')

# ===========================================================================
# B. asserted by upstream in the v1.28 cycle (no nfacct counters in that fake
#    proxier -> --iptables-nfacct=false reproduces it exactly with v1.33 code)
# ===========================================================================

OLD_NOTE = ('\nThe v1.28-era fake proxier had no nfacct counters; v1.33 then writes exactly the same '
            'rules (INVALID drop without "-m nfacct", no 127.0.0.0/8 nfacct NodePort rule), hence '
            '--iptables-nfacct=false.\nSource: ' + OLDER)

case('overall-multiple-services-no-nfacct', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80)]),
    service('ns2', 'svc2', '172.30.0.42', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            etp='Local', lb_ingress=[{'ip': '1.2.3.4'}], external_ips=['192.168.99.22'], hc_node_port=30000),
    service('ns3', 'svc3', '172.30.0.43', [port('p80', 'TCP', 80, node_port=3003)], type_='NodePort'),
    service('ns4', 'svc4', '172.30.0.44', [port('p80', 'TCP', 80, target_port=80)], type_='NodePort',
            external_ips=['192.168.99.33']),
    service('ns5', 'svc5', '172.30.0.45', [port('p80', 'TCP', 80, node_port=3002)], type_='LoadBalancer',
            etp='Cluster', lb_ingress=[{'ip': '5.6.7.8'}], hc_node_port=30000,
            source_ranges=[' 203.0.113.0/25']),
    service('ns6', 'svc6', '172.30.0.46', [port('p80', 'TCP', 80, target_port=80)], type_='ClusterIP'),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1')], [eport('p80', 80)]),
    slice_('ns2', 'svc2', 1, [ep('10.180.0.2')], [eport('p80', 80)]),
    slice_('ns3', 'svc3', 1, [ep('10.180.0.3')], [eport('p80', 80)]),
    slice_('ns4', 'svc4', 1, [ep('10.180.0.4'), ep('10.180.0.5', TN)], [eport('p80', 80)]),
    slice_('ns5', 'svc5', 1, [ep('10.180.0.3')], [eport('p80', 80)]),
], args(nfacct=False), 'TestOverallIPTablesRulesWithMultipleServices (predecessor of '
   'TestOverallIPTablesRules; svc5 without session affinity).' + OLD_NOTE, 'asserted-v1.28')

case('load-balancer-source-ranges', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            lb_ingress=[{'ip': '1.2.3.4'}, {'ip': '5.6.7.8'}],
            source_ranges=['192.168.0.0/24', ' 203.0.113.0/25']),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1')], [eport('p80', 80)]),
], args(nfacct=False), 'TestLoadBalancer: two LB ingress IPs, loadBalancerSourceRanges (one containing '
   'the node IP, so traffic from the LB IPs themselves is allowed too).' + OLD_NOTE, 'asserted-v1.28')

case('nodeport', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001)], type_='NodePort'),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1')], [eport('p80', 80)]),
], args(nfacct=False), 'TestNodePort: a plain NodePort service.' + OLD_NOTE, 'asserted-v1.28')

case('health-check-nodeport-no-endpoints', [
    node(),
    service('ns1', 'svc1', '172.30.0.42', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            hc_node_port=30000, etp='Local'),
], args('--nodeport-addresses=127.0.0.0/8', nfacct=False),
   'TestHealthCheckNodePort (first sync): LB eTP=Local with healthCheckNodePort, no endpoints, '
   'nodePortAddresses=[127.0.0.0/8] (localhost NodePorts stay enabled).' + OLD_NOTE, 'asserted-v1.28')

case('masquerade-rule', [node()], args(nfacct=False),
     'TestMasqueradeRule, randomFully=false: no services at all.' + OLD_NOTE, 'asserted-v1.28')

case('masquerade-rule-random-fully', [node()], args('--iptables-random-fully=true', nfacct=False),
     'TestMasqueradeRule, randomFully=true (fake iptables reports --random-fully support): no services; '
     'the MASQUERADE rule gets --random-fully.' + OLD_NOTE, 'asserted-v1.28')

case('external-traffic-policy-local', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            hc_node_port=30000, external_ips=['192.168.99.11'], lb_ingress=[{'ip': '1.2.3.4'}], etp='Local'),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', TN)], [eport('p80', 80)]),
], args(nfacct=False), 'TestExternalTrafficPolicyLocal: LB eTP=Local with externalIP, one local and one '
   'remote endpoint.' + OLD_NOTE, 'asserted-v1.28')

case('non-local-external-ips', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, target_port=80)],
            external_ips=['192.168.99.11']),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', TN)], [eport('p80', 80)]),
], args(nfacct=False), 'TestNonLocalExternalIPs: typeless (ClusterIP) service with an externalIP, eTP '
   'Cluster: external traffic is masqueraded.' + OLD_NOTE, 'asserted-v1.28')

LOCALHOST_SVC = lambda cip, fam='ipv4': service(  # noqa: E731
    'ns1', 'svc1', cip, [port('p80', 'TCP', 80, node_port=30001)], type_='NodePort', etp='Local')

case('localhost-nodeports-enabled-ipv4', [
    node(), LOCALHOST_SVC('10.69.0.10'),
    slice_('ns1', 'svc1', 1, [ep('10.244.0.1'), ep('10.244.2.1', TN)], [eport('p80', 80)]),
], args('--iptables-localhost-nodeports=true', nfacct=False, cluster_cidr=''),
   'TestEnableLocalhostNodePortsIPv4: NodePort eTP=Local, no local-traffic detector '
   '(NoOpLocalDetector -> --cluster-cidr=""), localhostNodePorts=true.' + OLD_NOTE, 'asserted-v1.28')

case('localhost-nodeports-disabled-ipv4', [
    node(), LOCALHOST_SVC('10.69.0.10'),
    slice_('ns1', 'svc1', 1, [ep('10.244.0.1'), ep('10.244.2.1', TN)], [eport('p80', 80)]),
], args('--iptables-localhost-nodeports=false', nfacct=False, cluster_cidr=''),
   'TestDisableLocalhostNodePortsIPv4: as the enabled case but localhostNodePorts=false (no KUBE-FIREWALL '
   'rule, "! -d 127.0.0.0/8" on the nodeports jump).' + OLD_NOTE, 'asserted-v1.28')

case('localhost-nodeports-disabled-ipv4-loopback-npa', [
    node(), LOCALHOST_SVC('10.69.0.10'),
    slice_('ns1', 'svc1', 1, [ep('10.244.0.1'), ep('10.244.2.1', TN)], [eport('p80', 80)]),
], args('--iptables-localhost-nodeports=false', '--nodeport-addresses=127.0.0.0/8', nfacct=False,
        cluster_cidr=''),
   'TestDisableLocalhostNodePortsIPv4WithNodeAddress: localhostNodePorts=false and '
   'nodePortAddresses=[127.0.0.0/8]: the only matching address is loopback, which is skipped, so there '
   'is no KUBE-SERVICES -> KUBE-NODEPORTS rule at all.' + OLD_NOTE, 'asserted-v1.28')

V6_SLICE = slice_('ns1', 'svc1', 1, [ep('ff06::c1'), ep('ff06::c2', TN)], [eport('p80', 80)],
                  address_type='IPv6')

case('localhost-nodeports-enabled-ipv6', [
    node(), LOCALHOST_SVC('fd00:ab34::20'), V6_SLICE,
], args('--iptables-localhost-nodeports=true', nfacct=False, cluster_cidr='', family='ipv6'),
   'TestEnableLocalhostNodePortsIPv6: IPv6 proxier, NodePort eTP=Local, no local-traffic detector; '
   'localhost NodePorts never apply to IPv6 ("! -d ::1/128").' + OLD_NOTE, 'asserted-v1.28')

case('localhost-nodeports-disabled-ipv6', [
    node(), LOCALHOST_SVC('fd00:ab34::20'), V6_SLICE,
], args('--iptables-localhost-nodeports=false', nfacct=False, cluster_cidr='', family='ipv6'),
   'TestDisableLocalhostNodePortsIPv6: as the enabled IPv6 case; output identical.' + OLD_NOTE,
   'asserted-v1.28')

ONLY_LOCAL = [
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001)], type_='NodePort',
            etp='Local'),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', TN)], [eport('p80', 80)]),
]

case('only-local-nodeports-no-cluster-cidr', [node()] + ONLY_LOCAL,
     args('--nodeport-addresses=192.168.0.0/24,2001:db8::/64', '--iptables-localhost-nodeports=false',
          nfacct=False, cluster_cidr=''),
     'TestOnlyLocalNodePortsNoClusterCIDR: NodePort eTP=Local, NoOpLocalDetector, nodePortAddresses '
     '[192.168.0.0/24, 2001:db8::/64] (IPv4 proxier keeps only the IPv4 CIDR), localhostNodePorts=false.'
     + OLD_NOTE, 'asserted-v1.28')

case('only-local-nodeports', [node()] + ONLY_LOCAL,
     args('--nodeport-addresses=192.168.0.0/24,2001:db8::/64', '--iptables-localhost-nodeports=false',
          nfacct=False),
     'TestOnlyLocalNodePorts: as the no-cluster-CIDR case but with the ClusterCIDR detector (adds the '
     '"pod traffic" short-circuit and the SVC masquerade rule).' + OLD_NOTE, 'asserted-v1.28')


def itp_case(name, itp, eps, desc):
    case(name, [
        node(),
        service('ns1', 'svc1', '172.30.1.1', [port('', 'TCP', 80)], itp=itp, selector={'foo': 'bar'}),
        slice_('ns1', 'svc1', 1, [ep(ip, n, ready=True) for ip, n in eps], [eport('', 80)]),
    ], args(nfacct=False), 'TestInternalTrafficPolicyE2E, sub-case "%s".' % desc + OLD_NOTE, 'asserted-v1.28')


itp_case('internal-traffic-policy-cluster', 'Cluster',
         [('10.0.1.1', TN), ('10.0.1.2', 'host1'), ('10.0.1.3', 'host2')],
         'internalTrafficPolicy is cluster')
itp_case('internal-traffic-policy-local', 'Local',
         [('10.0.1.1', TN), ('10.0.1.2', 'host1'), ('10.0.1.3', 'host2')],
         'internalTrafficPolicy is local and there are local endpoints')
itp_case('internal-traffic-policy-local-no-local-endpoints', 'Local',
         [('10.0.1.1', 'host0'), ('10.0.1.2', 'host1'), ('10.0.1.3', 'host2')],
         'internalTrafficPolicy is local and there are no local endpoints')


def term_service(etp):
    return service('ns1', 'svc1', '172.30.1.1', [port('', 'TCP', 80, target_port=80)],
                   type_='LoadBalancer', etp=etp, selector={'foo': 'bar'}, hc_node_port=30000,
                   affinity_timeout=10800, lb_ingress=[{'ip': '1.2.3.4'}])


def term_case(name, etp, eps, desc):
    case(name, [
        node(), term_service(etp),
        slice_('ns1', 'svc1', 1, [ep(ip, n, ready=r, serving=s, terminating=t) for ip, r, s, t, n in eps],
               [eport('', 80)]),
    ], args(nfacct=False),
       'TestTerminatingEndpointsTrafficPolicy%s, sub-case "%s" (first sync): LoadBalancer eTP=%s, '
       'healthCheckNodePort 30000, ClientIP affinity (10800s).' % (etp, desc, etp) + OLD_NOTE,
       'asserted-v1.28')


term_case('terminating-etp-local-ready-endpoints-exist', 'Local', [
    ('10.0.1.1', True, True, False, TN),
    ('10.0.1.2', True, True, False, TN),
    ('10.0.1.3', False, True, True, TN),
    ('10.0.1.4', False, False, True, TN),
    ('10.0.1.5', True, True, False, 'host-1'),
], 'ready endpoints exist')
term_case('terminating-etp-local-only-terminating', 'Local', [
    ('10.0.1.2', False, True, True, TN),
    ('10.0.1.3', False, True, True, TN),
    ('10.0.1.4', False, False, True, TN),
    ('10.0.1.5', True, True, False, 'host-1'),
], 'only terminating endpoints exist')
term_case('terminating-etp-local-remote-terminating', 'Local', [
    ('10.0.1.5', False, True, True, 'host-1'),
], 'terminating endpoints on remote node')
term_case('terminating-etp-local-no-usable-endpoints', 'Local', [
    ('10.0.1.5', False, False, True, TN),
    ('10.0.1.5', False, False, True, 'host-1'),
], 'no usable endpoints on any node')
term_case('terminating-etp-cluster-ready-endpoints-exist', 'Cluster', [
    ('10.0.1.1', True, True, False, TN),
    ('10.0.1.2', True, True, False, TN),
    ('10.0.1.3', False, True, True, 'another-host'),
    ('10.0.1.4', False, False, True, 'another-host'),
    ('10.0.1.5', True, True, False, 'another-host'),
], 'ready endpoints exist')
term_case('terminating-etp-cluster-only-terminating', 'Cluster', [
    ('10.0.1.2', False, True, True, TN),
    ('10.0.1.3', False, True, True, TN),
    ('10.0.1.4', False, False, True, 'another-host'),
    ('10.0.1.5', False, True, True, 'another-host'),
], 'only terminating endpoints exist')
term_case('terminating-etp-cluster-remote-terminating', 'Cluster', [
    ('10.0.1.5', False, True, True, 'host-1'),
], 'terminating endpoints on remote node')
term_case('terminating-etp-cluster-no-usable-endpoints', 'Cluster', [
    ('10.0.1.5', False, False, True, TN),
    ('10.0.1.5', False, False, True, 'host-1'),
], 'no usable endpoints on any node')

# ===========================================================================
# C. derived: upstream checks these with packet-flow tests (and/or single lines)
#    only; upstream.rules is generated by tools/derive.py and cross-checked
#    against upstream's flow expectations (flows.json) and single-line asserts.
# ===========================================================================

DERIVED = ('\nDERIVED, not asserted: upstream only runs packet-flow tests on this setup.  upstream.rules '
           'was generated by tools/refmodel.py (which reproduces every asserted case in this '
           'directory) and verified against upstream\'s own partial expectations (flows.json: packet flows; checks.json: asserted lines/chains).\nSource: ' + MASTER)

IEM = [
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            hc_node_port=30001, lb_ingress=[{'ip': '1.2.3.4'}]),
    service('ns2', 'svc2', '172.30.0.42', [port('p80', 'TCP', 80, node_port=3002)], type_='LoadBalancer',
            hc_node_port=30002, etp='Local', lb_ingress=[{'ip': '5.6.7.8'}]),
    service('ns3', 'svc3', '172.30.0.43', [port('p80', 'TCP', 80, node_port=3003)], type_='LoadBalancer',
            hc_node_port=30003, itp='Local', lb_ingress=[{'ip': '9.10.11.12'}]),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1', TN), ep('10.180.1.1', 'remote')], [eport('p80', 80)]),
    slice_('ns2', 'svc2', 1, [ep('10.180.0.2', TN), ep('10.180.1.2', 'remote')], [eport('p80', 80)]),
    slice_('ns3', 'svc3', 1, [ep('10.180.0.3', TN), ep('10.180.1.3', 'remote')], [eport('p80', 80)]),
]
for sub, extra, cc, desc in [
        ('base', [], '10.0.0.0/8', 'base'),
        ('no-local-detector', [], '', 'no LocalTrafficDetector'),
        ('masquerade-all', ['--masquerade-all'], '10.0.0.0/8', 'masqueradeAll'),
        ('masquerade-all-no-local-detector', ['--masquerade-all'], '', 'masqueradeAll, no LocalTrafficDetector')]:
    case('internal-external-masquerade-' + sub, [node()] + IEM, args(*extra, cluster_cidr=cc),
         'TestInternalExternalMasquerade, sub-case "%s": LB eTP=Cluster, LB eTP=Local, LB iTP=Local, each '
         'with one local and one remote endpoint.' % desc + DERIVED, 'derived')


def large_slice(ns, svc, pname, pnum, fmt, n):
    return slice_(ns, svc, 1, [ep(fmt % (i % 256, i // 256)) for i in range(n)], [eport(pname, pnum)])


LC_SVCS = [
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80)], type_='ClusterIP'),
    service('ns2', 'svc2', '172.30.0.42', [port('p8080', 'TCP', 8080)], type_='ClusterIP'),
    service('ns3', 'svc3', '172.30.0.43', [port('p8081', 'TCP', 8081)], type_='ClusterIP'),
]
LC_SLICES = [
    large_slice('ns1', 'svc1', 'p80', 80, '10.0.%d.%d', 1000 // 2 - 1),
    large_slice('ns2', 'svc2', 'p8080', 8080, '10.1.%d.%d', 1000 // 2 - 1),
]
LC_SVC3 = slice_('ns3', 'svc3', 1, [ep('203.0.113.4'), ep('203.0.113.8'), ep('203.0.113.12')],
                 [eport('p8081', 8081)])
LC_SRC = ('TestSyncProxyRulesLargeClusterMode (masqueradeAll=true): ns1/svc1 and ns2/svc2 with '
          '499 endpoints each (largeClusterEndpointsThreshold/2-1), ns3/svc3 with %s.')
case('large-cluster-mode-below-threshold', [node()] + LC_SVCS + LC_SLICES, args('--masquerade-all'),
     (LC_SRC % 'no endpoints yet (first sync: 998 endpoints <= 1000, comments kept)') +
     '  Upstream asserts the endpoint count, that every DNAT rule has a comment, and the exact line '
     '"-A KUBE-SEP-DKGQUZGBKLTPAR56 -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT '
     '--to-destination 10.0.0.0:80"; the rest is DERIVED by tools/refmodel.py.\nSource: ' + MASTER,
     'derived')
case('large-cluster-mode', [node()] + LC_SVCS + LC_SLICES + [LC_SVC3], args('--masquerade-all'),
     (LC_SRC % '3 endpoints (1001 > 1000 endpoints: large-cluster mode, no comments on SVC->SEP and SEP '
      'rules)') + '  This is the state of the test\'s forced full resync (forceSyncProxyRules).  Upstream '
     'asserts the endpoint count, that no DNAT rule has a comment, and the exact lines "-A '
     'KUBE-SEP-DKGQUZGBKLTPAR56 -m tcp -p tcp -j DNAT --to-destination 10.0.0.0:80" and "-A '
     'KUBE-SEP-RUVVH7YV3PHQBDOS -m tcp -p tcp -j DNAT --to-destination 203.0.113.4:8081"; the rest is '
     'DERIVED by tools/refmodel.py.\nSource: ' + MASTER, 'derived')


def ipmode_case(name, cip, lbip, ipmode, desc):
    ing = {'ip': lbip}
    if ipmode is not None:
        ing['ipMode'] = ipmode
    case(name, [
        node(),
        service('ns1', 'svc1', cip, [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
                lb_ingress=[ing]),
        slice_('ns1', 'svc1', 1, [ep('10.180.0.1')], [eport('p80', 80)]),
    ], args(), 'TestLoadBalancerIngressRouteTypeProxy, sub-case "%s" (LoadBalancerIPMode enabled, the '
       'v1.33 default).  Upstream asserts only whether nat KUBE-SERVICES has a rule with -d %s.'
       % (desc, lbip) + DERIVED.replace('upstream only runs packet-flow tests on this setup',
                                        'upstream only checks one rule\'s presence'), 'derived')


ipmode_case('lb-ipmode-proxy', '10.20.30.41', '1.2.3.4', 'Proxy', 'LoadBalancerIPMode enabled, ipMode Proxy')
ipmode_case('lb-ipmode-vip', '10.20.30.42', '1.2.3.5', 'VIP', 'LoadBalancerIPMode enabled, ipMode VIP')
ipmode_case('lb-ipmode-nil', '10.20.30.43', '1.2.3.6', None, 'LoadBalancerIPMode enabled, ipMode nil')


def nodeports_case(name, desc, family, localhost, npa):
    v4 = family == 'ipv4'
    cip = '172.30.0.41' if v4 else 'fd00:172:30::41'
    e1, e2 = ('10.180.0.1', '10.180.2.1') if v4 else ('fd00:10:180::1', 'fd00:10:180::2:1')
    extra = ['--iptables-localhost-nodeports=%s' % ('true' if localhost else 'false')]
    if npa:
        extra.append('--nodeport-addresses=' + ','.join(npa))
    case(name, [
        node(),
        service('ns1', 'svc1', cip, [port('p80', 'TCP', 80, node_port=3001)], type_='NodePort'),
        slice_('ns1', 'svc1', 1, [ep(e1), ep(e2, TN)], [eport('p80', 80)],
               address_type='IPv4' if v4 else 'IPv6'),
    ], args(*extra, cluster_cidr='10.0.0.0/8' if v4 else 'fd00:10::/64', family=family),
       'TestNodePorts, sub-case "%s".  Upstream asserts the KUBE-FIREWALL chain exactly (via '
       'assertIPTablesChainEqual) and runs packet flows.' % desc + DERIVED.replace(
           'upstream only runs packet-flow tests on this setup',
           'upstream asserts only the KUBE-FIREWALL chain and packet flows'), 'derived')


nodeports_case('nodeports-ipv4-localhost-enabled', 'ipv4, localhost-nodeports enabled', 'ipv4', True, None)
nodeports_case('nodeports-ipv4-localhost-disabled', 'ipv4, localhost-nodeports disabled', 'ipv4', False, None)
nodeports_case('nodeports-ipv4-localhost-disabled-loopback-npa',
               'ipv4, localhost-nodeports disabled, localhost in nodeport-addresses', 'ipv4', False,
               ['192.168.0.0/24', '127.0.0.1/32'])
nodeports_case('nodeports-ipv4-multiple-nodeport-addresses',
               'ipv4, localhost-nodeports enabled, multiple nodeport-addresses" (despite its name the '
               'sub-case sets localhostNodePorts=false', 'ipv4', False,
               ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'])
nodeports_case('nodeports-ipv6-localhost-enabled', 'ipv6, localhost-nodeports enabled', 'ipv6', True, None)
nodeports_case('nodeports-ipv6-localhost-disabled', 'ipv6, localhost-nodeports disabled', 'ipv6', False, None)
nodeports_case('nodeports-ipv6-multiple-nodeport-addresses',
               'ipv6, localhost-nodeports disabled, multiple nodeport-addresses', 'ipv6', False,
               ['192.168.0.0/24', '192.168.1.0/24', '2001:db8::/64'])

TOPO = ('\nDERIVED, not asserted: upstream tests CategorizeEndpoints in pkg/proxy/topology_test.go at the '
        'function level only; this input (written for this suite, modelled on those test endpoints) '
        'pins the resulting iptables rules.  upstream.rules was generated by tools/refmodel.py '
        'following pkg/proxy/topology.go of the same revision.\nSource: pkg/proxy/topology.go (index id '
        '705488364) + ' + MASTER)


def topo_items(labels, hints):
    return [
        node(labels),
        service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80)], type_='ClusterIP'),
        slice_('ns1', 'svc1', 1, [ep(ip, n, ready=True, zone=z, for_zones=fz, for_nodes=fn)
                                  for ip, n, z, fz, fn in hints], [eport('p80', 80)]),
    ]


ZONE_EPS = [
    ('10.1.2.3', TN, 'zone-a', ['zone-a'], None),
    ('10.1.2.4', 'node-b', 'zone-b', ['zone-b'], None),
    ('10.1.2.5', 'node-c', 'zone-a', ['zone-a'], None),
    ('10.1.2.6', 'node-d', 'zone-c', ['zone-c'], None),
]
case('topology-prefer-same-zone', topo_items({'topology.kubernetes.io/zone': 'zone-a'}, ZONE_EPS), args(),
     'Topology hints: every ready endpoint has a zone hint and some are hinted for the node\'s zone '
     '(label topology.kubernetes.io/zone=zone-a): only those are used.' + TOPO, 'derived')
case('topology-zone-hints-missing-node-label', topo_items(None, ZONE_EPS), args(),
     'Topology hints: zone hints present but the node has no topology.kubernetes.io/zone label: hints '
     'are ignored, all endpoints used.' + TOPO, 'derived')
NODE_EPS = [
    ('10.1.2.3', TN, 'zone-a', ['zone-a'], [TN]),
    ('10.1.2.4', 'node-b', 'zone-b', ['zone-b'], ['node-b']),
    ('10.1.2.5', 'node-c', 'zone-a', ['zone-a'], ['node-c']),
]
case('topology-prefer-same-node', topo_items({'topology.kubernetes.io/zone': 'zone-a'}, NODE_EPS),
     args('--feature-gates=PreferSameTrafficDistribution=true'),
     'Topology hints: node hints on every ready endpoint, one for this node; PreferSameTrafficDistribution '
     'enabled: only the endpoint hinted for test-node is used.' + TOPO, 'derived')
case('topology-prefer-same-node-gate-off', topo_items({'topology.kubernetes.io/zone': 'zone-a'}, NODE_EPS),
     args('--feature-gates=PreferSameTrafficDistribution=false'),
     'Topology hints: as topology-prefer-same-node but with PreferSameTrafficDistribution disabled: node '
     'hints are ignored and the zone hints select the two zone-a endpoints.' + TOPO, 'derived')


# --- more flow-only tests of upstream master ------------------------------

case('no-endpoints-reject', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001)], type_='LoadBalancer',
            external_ips=['192.168.99.11'], lb_ingress=[{'ip': '1.2.3.4'}]),
], args(), 'TestNoEndpointsReject: LB service with externalIP and NodePort but no endpoints: REJECT for '
   'ClusterIP, externalIP, NodePort and LB IP.' + DERIVED, 'derived')

case('cluster-ip-general', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('http', 'TCP', 80)]),
    service('ns2', 'svc2', '172.30.0.42', [
        port('http', 'TCP', 80),
        port('https', 'TCP', 443, target_port=8443),
        port('dns-udp', 'UDP', 53),
        port('dns-tcp', 'TCP', 53, target_port=5353),
        port('dns-sctp', 'SCTP', 53)]),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1', TN)], [eport('http', 80)]),
    slice_('ns2', 'svc2', 1, [ep('10.180.0.1', TN), ep('10.180.2.1', 'node2')], [
        eport('http', 80), eport('https', 8443), eport('dns-udp', 53, 'UDP'), eport('dns-tcp', 5353),
        eport('dns-sctp', 53, 'SCTP')]),
], args(), 'TestClusterIPGeneral: typeless ClusterIP services, multiple named ports, target ports, '
   'TCP/UDP/SCTP on the same port number.' + DERIVED, 'derived')

case('external-traffic-policy-cluster', [
    node(),
    service('ns1', 'svc1', '172.30.0.41', [port('p80', 'TCP', 80, node_port=3001, target_port=80)],
            type_='LoadBalancer', external_ips=['192.168.99.11'], lb_ingress=[{'ip': '1.2.3.4'}], etp='Cluster'),
    slice_('ns1', 'svc1', 1, [ep('10.180.0.1'), ep('10.180.2.1', TN)], [eport('p80', 80)]),
], args(), 'TestExternalTrafficPolicyCluster: LB eTP=Cluster with externalIP, one remote and one local '
   'endpoint: external traffic is masqueraded.' + DERIVED, 'derived')

DROP_INVALID = DERIVED.replace('upstream only runs packet-flow tests on this setup',
                               'upstream asserts only the KUBE-FORWARD chain (checks.json)')
case('drop-invalid-rule-no-nfacct', [node()], args(nfacct=False),
     'TestDropInvalidRule, sub-case "tcpLiberal is false and nfacctEnsured is false": no services, no '
     'nfacct counters.' + DROP_INVALID, 'derived')
case('drop-invalid-rule-nfacct', [node()], args(),
     'TestDropInvalidRule, sub-case "tcpLiberal is false and nfacctEnsured is true": no services; the '
     'INVALID drop rule counts into ct_state_invalid_dropped_pkts.  (Upstream\'s sub-case has only the '
     'INVALID counter, not the localhost one; with no services the output is the same.)' + DROP_INVALID,
     'derived')
case('drop-invalid-rule-tcp-be-liberal', [node()], args('--conntrack-tcp-be-liberal', nfacct=False),
     'TestDropInvalidRule, sub-case "tcpLiberal is true and nfacctEnsured is false": '
     'net.netfilter.nf_conntrack_tcp_be_liberal != 0, so there is no INVALID drop rule.' + DROP_INVALID,
     'derived')


MARK_NOTE = ('\nFake-proxier setting not expressible with the agreed flags: masqueradeMark is the literal '
             '"0x4000" (real kube-proxy prints "0x00004000"); run.sh compares with SHORT_MARKS=1 '
             '(see README.md).')


# Cases where upstream's sortIPTablesRules leaves an order to Go map iteration; run.sh
# passes these (non-upstream) relaxations to iptables_sort.py for both sides.
COMPARE_OPTIONS = {
    # five ports of ns2/svc2: their KUBE-SERVICES rules share the sort key "ns2/svc2"
    'cluster-ip-general': '--unordered-chain nat:KUBE-SERVICES',
    # two "-d <node IP> -j KUBE-NODEPORTS" rules, emitted in Go map order
    'nodeports-ipv4-multiple-nodeport-addresses': '--unordered-chain nat:KUBE-SERVICES',
}


def main(argv):
    root = argv[1] if len(argv) > 1 else ROOT
    for name, (items, argv_, source, kind) in sorted(CASES.items()):
        d = os.path.join(root, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, 'input.json'), 'w') as f:
            json.dump({'kind': 'List', 'apiVersion': 'v1', 'items': items}, f, indent=2)
            f.write('\n')
        with open(os.path.join(d, 'args'), 'w') as f:
            f.write(argv_ + '\n')
        note = MARK_NOTE
        if name in COMPARE_OPTIONS:
            with open(os.path.join(d, 'compare-options'), 'w') as f:
                f.write(COMPARE_OPTIONS[name] + '\n')
            note += ('\nUpstream\'s canonical sort does not fix the relative order of some rules here (Go map '
                     'order); run.sh compares with: ' + COMPARE_OPTIONS[name])
        with open(os.path.join(d, 'SOURCE'), 'w') as f:
            f.write('kind: %s\n%s%s\n' % (kind, source, note))
    print('%d cases' % len(CASES))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
