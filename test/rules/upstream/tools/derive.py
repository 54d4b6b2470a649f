#!/usr/bin/python3
"""(Re)generate upstream.rules for the cases whose SOURCE says "kind: derived".

Derived cases are those where upstream's test only checks packet flows, single
lines or rule presence.  Their upstream.rules is the canonical (sorted) output of
tools/refmodel.py with the mark written the way upstream's fake proxier writes it
("0x4000"), so that it has exactly the shape of an asserted upstream literal.
tools/selftest.py then checks every derived case against upstream's own partial
expectations (flows.json, checks.json).

usage: derive.py [CASE...]        (default: every derived case)
"""

import os
import shlex
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import iptables_sort  # noqa: E402
import refmodel  # noqa: E402
import json  # noqa: E402


def case_kind(case):
    with open(os.path.join(ROOT, case, 'SOURCE'), encoding='utf-8') as f:
        first = f.readline().strip()
    return first.split(':', 1)[1].strip() if first.startswith('kind:') else ''


def model_output(case):
    with open(os.path.join(ROOT, case, 'input.json'), encoding='utf-8') as f:
        doc = json.load(f)
    with open(os.path.join(ROOT, case, 'args'), encoding='utf-8') as f:
        argv = shlex.split(f.read())
    return refmodel.render(doc.get('items', []), refmodel.parse_args(argv))


def canonical_model_output(case):
    return iptables_sort.sort_iptables_rules(iptables_sort.short_marks(model_output(case)))


def all_cases():
    return sorted(d for d in os.listdir(ROOT)
                  if os.path.isfile(os.path.join(ROOT, d, 'SOURCE')))


def main(argv):
    cases = argv[1:] or [c for c in all_cases() if case_kind(c) == 'derived']
    for c in cases:
        if case_kind(c) != 'derived':
            print('refusing to overwrite non-derived case %s' % c, file=sys.stderr)
            return 1
        with open(os.path.join(ROOT, c, 'upstream.rules'), 'w', encoding='utf-8') as f:
            f.write(canonical_model_output(c))
        print('derived %s' % c)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
