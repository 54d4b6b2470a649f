#!/usr/bin/python3
"""Self-test of the acceptance data and of iptables_sort.py (no binary needed).

  1. iptables_sort.py against upstream's own TestSortIPTablesRules and
     TestCheckIPTablesRuleJumps fixtures (selftest/).
  2. For every case directory:
       * upstream.rules is already canonical (upstream's expected literals are
         always written in sorted form: assertIPTablesRulesEqual compares the
         literal with the *sorted* output),
       * sorting is idempotent,
       * checkIPTablesRuleJumps passes,
       * shuffle invariance: random renderings that keep each chain's rule order
         (and, in KUBE-SERVICES / KUBE-NODEPORTS, only each service's own rule order,
         as Go map iteration would) all sort back to upstream.rules,
       * tools/refmodel.py regenerates upstream.rules from input.json + args
         (a transcription cross-check for asserted cases; equality by construction
         for derived ones),
       * flows.json (upstream packet-flow expectations) pass on upstream.rules,
       * checks.json (upstream's partial assertions) hold.

usage: selftest.py [-v] [CASE...]
"""

import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import iptables_sort as S  # noqa: E402
import derive  # noqa: E402
import packet_trace  # noqa: E402

SHUFFLES = 20


def read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def sorter_fixtures():
    errs = []
    d = os.path.join(ROOT, 'selftest')
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if name.startswith('sort-') and name.endswith('.in'):
            want = read(p[:-3] + '.out')
            got = S.sort_iptables_rules(read(p))
            if got != want:
                errs.append('%s: sorted output differs from upstream expectation' % name)
            if S.sort_iptables_rules(got) != got:
                errs.append('%s: sorting is not idempotent' % name)
        elif name.startswith('jumps-') and name.endswith('.in'):
            want = read(p[:-3] + '.err').strip()
            got = S.check_iptables_rule_jumps(read(p).lstrip(' \t\n')) or ''
            if got != want:
                errs.append('%s: got %r want %r' % (name, got, want))
    return errs


def shuffled_rendering(text, rng, relax=()):
    """Re-render the dump with a random chain order, random table order and a random
    interleaving of the chains' rules; KUBE-SERVICES / KUBE-NODEPORTS rules are
    additionally regrouped per service (keeping each service's own order, except in
    chains relaxed by compare-options, where everything is shuffled)."""
    dump = S.parse_dump(text)
    rng.shuffle(dump.tables)
    out = []
    for t in dump.tables:
        chains = list(t.chains)
        rng.shuffle(chains)
        out.append('*%s' % t.name)
        out += [':%s - [%d:%d]' % (c.name, c.packets, c.bytes) for c in chains]
        queues = []
        for c in chains:
            if (t.name, c.name) in relax:
                queues += [[r.raw] for r in c.rules]
            elif c.name in ('KUBE-SERVICES', 'KUBE-NODEPORTS') and all(r.comment is not None for r in c.rules):
                groups = {}
                for r in c.rules:
                    groups.setdefault(S._service_name(r.comment), []).append(r.raw)
                queues += [list(g) for g in groups.values()]
            else:
                queues.append([r.raw for r in c.rules])
        queues = [q for q in queues if q]
        while queues:
            q = rng.choice(queues)
            out.append(q.pop(0))
            if not q:
                queues.remove(q)
        deleted = [c.name for c in chains if c.deleted]
        out += ['-X %s' % n for n in deleted]
        out.append('COMMIT')
    return '\n'.join(out) + '\n'


def compare_options(case):
    p = os.path.join(ROOT, case, 'compare-options')
    if not os.path.exists(p):
        return []
    words = read(p).split()
    assert all(w == '--unordered-chain' for w in words[0::2]), p
    return [tuple(w.split(':', 1)) for w in words[1::2]]


def check_case(case, rng):
    errs = []
    d = os.path.join(ROOT, case)
    rules = read(os.path.join(d, 'upstream.rules'))
    relax = compare_options(case)
    try:
        canon = S.sort_iptables_rules(rules)
    except S.ParseError as e:
        return ['does not parse: %s' % e]
    if canon != rules:
        errs.append('upstream.rules is not in canonical (sorted) form')
    if S.sort_iptables_rules(canon) != canon:
        errs.append('sorting is not idempotent')
    err = S.check_iptables_rule_jumps(rules)
    if err:
        errs.append('checkIPTablesRuleJumps: %s' % err)
    for i in range(SHUFFLES):
        if S.sort_iptables_rules(shuffled_rendering(rules, rng, relax), relax) != \
                S.sort_iptables_rules(rules, relax):
            errs.append('shuffled rendering #%d sorts differently' % i)
            break
    if derive.canonical_model_output(case) != rules:
        errs.append('tools/refmodel.py output differs (input.json/args vs upstream.rules)')
    fp = os.path.join(d, 'flows.json')
    if os.path.exists(fp):
        fails = packet_trace.run_flows(rules, json.loads(read(fp)))
        errs += ['flow %s' % f for f in fails]
    cp = os.path.join(d, 'checks.json')
    if os.path.exists(cp):
        errs += partial_checks(rules, json.loads(read(cp)))
    return errs


def partial_checks(rules, chk):
    errs = []
    lines = rules.split('\n')
    dump = S.parse_dump(rules)
    for want in chk.get('lines', []):
        if want not in lines:
            errs.append('missing asserted line: %s' % want)
    if 'dnatRules' in chk:
        dnat = [ln for ln in lines if ln.startswith('-A KUBE-SEP-') and '-j DNAT' in ln]
        if len(dnat) != chk['dnatRules']:
            errs.append('DNAT rule count %d != %d' % (len(dnat), chk['dnatRules']))
        nc = len([ln for ln in dnat if '--comment' in ln])
        if nc != chk['dnatRulesWithComment']:
            errs.append('commented DNAT rules %d != %d' % (nc, chk['dnatRulesWithComment']))
    for cr in chk.get('chainRules', []):
        c = dump.get_chain(cr['table'], cr['chain'])
        got = [r.raw for r in c.rules] if c is not None else []
        if got != cr['rules']:
            errs.append('%s %s rules %r != %r' % (cr['table'], cr['chain'], got, cr['rules']))
    for dc in chk.get('destinationInChain', []):
        c = dump.get_chain(dc['table'], dc['chain'])
        has = any(r.get('-d') is not None and r.get('-d')[1] == dc['destination'] for r in (c.rules if c else []))
        if has != dc['expected']:
            errs.append('%s %s rule with -d %s: %s, expected %s' % (dc['table'], dc['chain'], dc['destination'],
                                                                    has, dc['expected']))
    return errs


def main(argv):
    verbose = '-v' in argv
    cases = [a for a in argv[1:] if a != '-v'] or derive.all_cases()
    rng = random.Random(20250601)
    failed = 0
    errs = sorter_fixtures()
    print('%s sorter/jump-check fixtures' % ('ok  ' if not errs else 'FAIL'))
    for e in errs:
        print('    ' + e)
    failed += bool(errs)
    for c in cases:
        errs = check_case(c, rng)
        if errs or verbose:
            print('%s %s (%s)' % ('ok  ' if not errs else 'FAIL', c, derive.case_kind(c)))
        for e in errs:
            print('    ' + e)
        failed += bool(errs)
    print('%d cases checked, %d failed' % (len(cases), failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
