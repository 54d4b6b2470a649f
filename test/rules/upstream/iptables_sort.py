#!/usr/bin/python3
"""Canonicalise iptables-restore text the way upstream kube-proxy's tests do.

Re-implementation (Python 3 stdlib only) of the behaviour of, in
kubernetes/kubernetes:

  * pkg/util/iptables/testing/parse.go  ParseIPTablesDump / ParseRule / String
  * pkg/proxy/iptables/proxier_test.go  sortIPTablesRules / orderByCommentServiceName
                                         checkIPTablesRuleJumps / parseIPTablesData
  * assertIPTablesRulesEqual            (leading " \\t\\n" trimmed before sorting)

Behaviour that matters for exact equality with upstream:

  * Tables are ordered by name.  Inside a table the ":CHAIN" lines come first, in
    chain order: KUBE-NODEPORTS, KUBE-SERVICES, other KUBE-* by name, then all
    other chains by name.  Then every chain's "-A" rules, grouped per chain in the
    same chain order, in emission order.  Then one "-X CHAIN" line for each chain
    that the input deleted (a "-X" line never moves a chain; the chain still needs
    its ":CHAIN" line, which is printed with the others).  Then "COMMIT".
  * Packet/byte counters of ":CHAIN - [p:b]" lines are re-printed as parsed.
  * Rule text is kept verbatim (after whitespace trimming of the line).
  * The "-A" rules of filter KUBE-NODEPORTS, nat KUBE-NODEPORTS, filter
    KUBE-SERVICES and nat KUBE-SERVICES are sorted with Go's sort.SliceStable
    (insertion sort in blocks of 20 + SymMerge, replicated here exactly) using
    "service name from the comment" (comment text up to the first ' ' or ':') as
    the key.  If either rule has no comment the comparison is "not less", exactly as
    upstream (so uncommented rules behave as equal to everything).  In nat
    KUBE-SERVICES a rule whose comment contains "must be the last rule" sorts last.
  * Blank lines and lines starting with '#' are ignored; an unknown line, a rule for
    an undeclared chain, a rule added to a deleted chain, "-X" of an undeclared chain
    or of a chain that already has rules, and a missing final COMMIT are errors.

CLI:
  iptables_sort.py FILE                 print the canonical form ("-" = stdin)
  iptables_sort.py --check-jumps FILE   run checkIPTablesRuleJumps; exit 1 on error
  iptables_sort.py --check-sorted FILE  exit 1 (and print a diff) unless FILE is
                                        already in canonical form (as upstream's
                                        expected literals always are)
  iptables_sort.py --short-marks FILE   NOT upstream behaviour: first rewrite mark
                                        values written with leading zeros
                                        ("--or-mark 0x00004000", "--mark
                                        0x00004000/0x00004000") to the short form
                                        ("0x4000"), then canonicalise.  Real
                                        kube-proxy formats the mark with Go's
                                        "%#08x" (0x00004000 for bit 14) while the
                                        upstream fake proxier hard-codes "0x4000";
                                        see README.md.
  iptables_sort.py --unordered-chain TABLE:CHAIN FILE
                                        NOT upstream behaviour (repeatable): after
                                        canonicalising, order that chain's rules by
                                        their text (a nat KUBE-SERVICES rule whose
                                        comment says "must be the last rule" stays
                                        after the others).  For the few cases where
                                        upstream's sort leaves an order to Go map
                                        iteration (several ports of one service, or
                                        several --nodeport-addresses jump rules);
                                        listed per case in <case>/compare-options.
"""

import difflib
import functools
import re
import sys


class ParseError(Exception):
    pass


# --------------------------------------------------------------------------
# parse.go
# --------------------------------------------------------------------------

_DECLARE_TABLE = re.compile(r'^\*(.*)$')
_DECLARE_CHAIN = re.compile(r'^:([^ ]*) - \[([0-9]*):([0-9]*)\]$')
_ADD_RULE = re.compile(r'^-A ([^ ]*) (.*)$')
_DELETE_CHAIN = re.compile(r'^-X (.*)$')
# Go RE2 `\s` / `\S` are ASCII-only: [\t\n\f\r ].
_WORD = re.compile(r'(?:^|[\t\n\f\r ])("[^"]*"|[^"][^\t\n\f\r ]*)')

# param -> (kind, negatable); kind: 'value' (*IPTablesValue), 'bool' (*bool),
# 'string' (plain string field, i.e. the -A chain name)
_PARAMS = {
    '-A': ('string', False),
    '--comment': ('value', False),
    '-p': ('value', True),
    '-s': ('value', True),
    '--src-type': ('value', True),
    '--sport': ('value', True),
    '-d': ('value', True),
    '--dst-type': ('value', True),
    '--dport': ('value', True),
    '--match-set': ('value', True),
    '-j': ('value', False),
    '--random-fully': ('bool', False),
    '--probability': ('value', False),
    '--to-destination': ('value', False),
    '--rcheck': ('bool', True),
    '--mark': ('value', True),
    '--ctstate': ('value', True),
    '--name': ('value', False),
    '--seconds': ('value', False),
    '--set': ('bool', True),
    '--reap': ('bool', False),
    '--mode': ('value', False),
}


def _go_trim_space(s):
    # strings.TrimSpace trims Unicode white space; str.strip() is equivalent
    # for everything that can appear in iptables-restore text.
    return s.strip()


class Rule:
    """A parsed rule.  `fields` maps a parameter ('-d', '--comment', ...) to
    (negated, value) for value parameters, or to a bool for flag parameters."""

    def __init__(self, raw):
        self.raw = raw
        self.chain = ''
        self.fields = {}

    def get(self, param):
        return self.fields.get(param)

    @property
    def comment(self):
        v = self.fields.get('--comment')
        return None if v is None else v[1]


def parse_rule(line, strict=False):
    rule = Rule(line)
    words = [m.group(1).strip('"') for m in _WORD.finditer(line)]
    if len(words) < 2 or words[0] != '-A':
        raise ParseError('bad iptables rule (does not start with "-A CHAIN")')
    if len(words) < 3:
        raise ParseError('bad iptables rule (no match rules)')
    negated = False
    w = 0
    while w < len(words):
        word = words[w]
        if word == '-m' and w < len(words) - 1:
            w += 2
            continue
        if word == '!':
            negated = True
            w += 1
            continue
        spec = _PARAMS.get(word)
        if spec is not None:
            kind, negatable = spec
            if negated and not negatable:
                raise ParseError('cannot negate parameter %r' % word)
            if kind != 'bool' and w == len(words) - 1:
                raise ParseError('parameter %r requires an argument' % word)
            if kind == 'bool':
                rule.fields[word] = not negated
                w += 1
            elif kind == 'value':
                rule.fields[word] = (negated, words[w + 1])
                w += 2
            else:
                rule.chain = words[w + 1]
                w += 2
        elif strict:
            raise ParseError('unrecognized parameter %r' % word)
        else:
            w += 1
        negated = False
    return rule


class Chain:
    def __init__(self, name, packets, nbytes):
        self.name = name
        self.packets = packets
        self.bytes = nbytes
        self.rules = []
        self.deleted = False


class Table:
    def __init__(self, name):
        self.name = name
        self.chains = []

    def get_chain(self, name):
        for c in self.chains:
            if c.name == name:
                return c
        return None


class Dump:
    def __init__(self):
        self.tables = []

    def get_table(self, name):
        for t in self.tables:
            if t.name == name:
                return t
        return None

    def get_chain(self, table, chain):
        t = self.get_table(table)
        if t is None:
            return None
        return t.get_chain(chain)

    def to_string(self):
        out = []
        for t in self.tables:
            out.append('*%s\n' % t.name)
            for c in t.chains:
                out.append(':%s - [%d:%d]\n' % (c.name, c.packets, c.bytes))
            for c in t.chains:
                for r in c.rules:
                    out.append('%s\n' % r.raw)
            for c in t.chains:
                if c.deleted:
                    out.append('-X %s\n' % c.name)
            out.append('COMMIT\n')
        return ''.join(out)


def _parse_uint(s):
    # strconv.ParseUint error is ignored upstream -> 0
    try:
        return int(s) if s != '' else 0
    except ValueError:
        return 0


def parse_dump(data):
    dump = Dump()
    state = 'table'
    table = None
    for line in data.strip('\n').split('\n'):
        line = _go_trim_space(line)
        if line == '' or line[0] == '#':
            continue
        while True:  # emulates the upstream "goto retry"
            if state == 'table':
                m = _DECLARE_TABLE.match(line)
                if m is None:
                    raise ParseError(
                        'could not parse iptables data (table %d starts with %r not a table name)'
                        % (len(dump.tables) + 1, line))
                table = Table(m.group(1))
                dump.tables.append(table)
                state = 'chains-decl'
                break
            if state == 'chains-decl':
                m = _DECLARE_CHAIN.match(line)
                if m is None:
                    state = 'chains'
                    continue
                table.chains.append(Chain(m.group(1), _parse_uint(m.group(2)), _parse_uint(m.group(3))))
                break
            # state == 'chains'
            m = _ADD_RULE.match(line)
            if m is not None:
                c = dump.get_chain(table.name, m.group(1))
                if c is None:
                    raise ParseError('error parsing rule %r: no such chain %r' % (line, m.group(1)))
                if c.deleted:
                    raise ParseError('cannot add rules to deleted chain %r' % m.group(1))
                c.rules.append(parse_rule(line))
                break
            m = _DELETE_CHAIN.match(line)
            if m is not None:
                c = dump.get_chain(table.name, m.group(1))
                if c is None:
                    raise ParseError('error parsing rule %r: no such chain %r' % (line, m.group(1)))
                if c.rules:
                    raise ParseError('cannot delete chain %r after adding rules' % m.group(1))
                c.deleted = True
                break
            if line == 'COMMIT':
                state = 'table'
                break
            raise ParseError('error parsing rule %r' % line)
    if state != 'table':
        raise ParseError('could not parse iptables data (no COMMIT line?)')
    return dump


# --------------------------------------------------------------------------
# Go's sort.SliceStable (sort/zsortfunc.go: stable_func), replicated exactly so
# that non-strict comparators (rules without comments) give the same result.
# --------------------------------------------------------------------------

def _insertion_sort(data, less, a, b):
    for i in range(a + 1, b):
        j = i
        while j > a and less(data[j], data[j - 1]):
            data[j], data[j - 1] = data[j - 1], data[j]
            j -= 1


def _swap_range(data, a, b, n):
    for i in range(n):
        data[a + i], data[b + i] = data[b + i], data[a + i]


def _rotate(data, a, m, b):
    i = m - a
    j = b - m
    while i != j:
        if i > j:
            _swap_range(data, m - i, m, j)
            i -= j
        else:
            _swap_range(data, m - i, m + j - i, i)
            j -= i
    _swap_range(data, m - i, m, i)


def _sym_merge(data, less, a, m, b):
    if m - a == 1:
        i, j = m, b
        while i < j:
            h = (i + j) >> 1
            if less(data[h], data[a]):
                i = h + 1
            else:
                j = h
        for k in range(a, i - 1):
            data[k], data[k + 1] = data[k + 1], data[k]
        return
    if b - m == 1:
        i, j = a, m
        while i < j:
            h = (i + j) >> 1
            if not less(data[m], data[h]):
                i = h + 1
            else:
                j = h
        for k in range(m, i, -1):
            data[k], data[k - 1] = data[k - 1], data[k]
        return
    mid = (a + b) >> 1
    n = mid + m
    if m > mid:
        start = n - b
        r = mid
    else:
        start = a
        r = m
    p = n - 1
    while start < r:
        c = (start + r) >> 1
        if not less(data[p - c], data[c]):
            start = c + 1
        else:
            r = c
    end = n - start
    if start < m < end:
        _rotate(data, start, m, end)
    if a < start < mid:
        _sym_merge(data, less, a, start, mid)
    if mid < end < b:
        _sym_merge(data, less, mid, end, b)


def go_slice_stable(data, less):
    n = len(data)
    block = 20
    a, b = 0, block
    while b <= n:
        _insertion_sort(data, less, a, b)
        a = b
        b += block
    _insertion_sort(data, less, a, n)
    while block < n:
        a, b = 0, 2 * block
        while b <= n:
            _sym_merge(data, less, a, a + block, b)
            a = b
            b += 2 * block
        m = a + block
        if m < n:
            _sym_merge(data, less, a, m, n)
        block *= 2


# --------------------------------------------------------------------------
# proxier_test.go: sortIPTablesRules
# --------------------------------------------------------------------------

KUBE_NODEPORTS = 'KUBE-NODEPORTS'
KUBE_SERVICES = 'KUBE-SERVICES'


def _service_name(comment):
    idx = [i for i in (comment.find(' '), comment.find(':')) if i != -1]
    return comment[:min(idx)] if idx else comment


def order_by_comment_service_name(r1, r2):
    if r1.comment is None or r2.comment is None:
        return False
    return _service_name(r1.comment) < _service_name(r2.comment)


def _chain_cmp(c1, c2):
    """Upstream's chain "less" turned into a three-way comparison (names are unique
    inside a table, so the order is total and any sort algorithm agrees)."""
    def less(i, j):
        if i == KUBE_NODEPORTS:
            return True
        if j == KUBE_NODEPORTS:
            return False
        if i == KUBE_SERVICES:
            return True
        if j == KUBE_SERVICES:
            return False
        ik, jk = i.startswith('KUBE-'), j.startswith('KUBE-')
        if ik and not jk:
            return True
        if not ik and jk:
            return False
        return i < j
    a, b = c1.name, c2.name
    if a == b:
        return 0
    return -1 if less(a, b) else 1


def sort_dump(dump):
    dump.tables.sort(key=lambda t: t.name)
    for t in dump.tables:
        t.chains.sort(key=functools.cmp_to_key(_chain_cmp))

    for table in ('filter', 'nat'):
        c = dump.get_chain(table, KUBE_NODEPORTS)
        if c is not None:
            go_slice_stable(c.rules, order_by_comment_service_name)

    c = dump.get_chain('filter', KUBE_SERVICES)
    if c is not None:
        go_slice_stable(c.rules, order_by_comment_service_name)

    c = dump.get_chain('nat', KUBE_SERVICES)
    if c is not None:
        def less_last(r1, r2):
            if r1.comment is not None and 'must be the last rule' in r1.comment:
                return False
            if r2.comment is not None and 'must be the last rule' in r2.comment:
                return True
            return order_by_comment_service_name(r1, r2)
        go_slice_stable(c.rules, less_last)
    return dump


def sort_iptables_rules(data, unordered_chains=()):
    """sortIPTablesRules(strings.TrimLeft(data, " \\t\\n")); unordered_chains is the
    non-upstream relaxation of --unordered-chain (list of (table, chain))."""
    dump = sort_dump(parse_dump(data.lstrip(' \t\n')))
    for table, chain in unordered_chains:
        c = dump.get_chain(table, chain)
        if c is not None:
            c.rules.sort(key=lambda r: (r.comment is not None and 'must be the last rule' in r.comment, r.raw))
    return dump.to_string()


# --------------------------------------------------------------------------
# proxier_test.go: parseIPTablesData / checkIPTablesRuleJumps
# --------------------------------------------------------------------------

TOP_LEVEL_CHAINS = (
    'KUBE-SERVICES', 'KUBE-EXTERNAL-SERVICES', 'KUBE-NODEPORTS', 'KUBE-POSTROUTING',
    'KUBE-FORWARD', 'KUBE-MARK-MASQ', 'KUBE-PROXY-FIREWALL', 'KUBE-FIREWALL',
)
BUILTIN_TARGETS = ('ACCEPT', 'REJECT', 'DROP', 'MARK', 'RETURN', 'DNAT', 'SNAT', 'MASQUERADE')


def parse_iptables_data(data):
    raw_tables = data[1:].split('COMMIT\n') if data.startswith('\n') else data.split('COMMIT\n')
    n = len(raw_tables) - 1
    if n < 2 or raw_tables[n] != '':
        raise ParseError('bad ruleData (%d tables)' % n)
    tables = {}
    for i, raw in enumerate(raw_tables[:n]):
        lines = raw.strip('\n').split('\n')
        if lines[0][:1] != '*':
            raise ParseError('bad ruleData (table %d starts with %r)' % (i + 1, lines[0]))
        lines.append('COMMIT')
        tables[lines[0][1:]] = lines
    if 'nat' not in tables:
        raise ParseError('bad ruleData (no "nat" table)')
    if 'filter' not in tables:
        raise ParseError('bad ruleData (no "filter" table)')
    return tables


def _find_all(lines, pattern, anchored):
    rx = re.compile(pattern)
    out = set()
    for line in lines:
        m = rx.match(line) if anchored else rx.search(line)
        if m is not None:
            out.add(m.group(1))
    return out


def _golist(items):
    return '[' + ' '.join(sorted(items)) + ']'


def check_iptables_rule_jumps(data):
    """Returns None if fine, else the upstream-style error message."""
    try:
        tables = parse_iptables_data(data)
    except ParseError as e:
        return str(e)
    for name in sorted(tables):  # upstream iterates a Go map (random order)
        lines = tables[name]
        created = _find_all(lines, r'^:([^ ]*)', True)
        created -= _find_all(lines, r'-X ([^ ]*)', False)
        filled = _find_all(lines, r'-A ([^ ]*)', False)
        jumped = _find_all(lines, r'-j ([^ ]*)', False)
        jumped -= set(BUILTIN_TARGETS)
        missing = (jumped - created) | (filled - created)
        if missing:
            return 'some chains in %s are used but were not created: %s' % (name, _golist(missing))
        empty = jumped - filled
        empty.discard(KUBE_NODEPORTS)
        if empty:
            return 'some chains in %s are jumped to but have no rules: %s' % (name, _golist(empty))
        extra = created - jumped
        extra -= set(TOP_LEVEL_CHAINS)
        if extra:
            return 'some chains in %s are created but not used: %s' % (name, _golist(extra))
    return None


# --------------------------------------------------------------------------
# mark normalisation (not upstream; see --short-marks)
# --------------------------------------------------------------------------

_MARK_ARG = re.compile(r'(--(?:or-|xor-)?mark (?:! )?)0x([0-9a-fA-F]+)(?:/0x([0-9a-fA-F]+))?')


def short_marks(data):
    def one(hexdigits):
        return '0x%x' % int(hexdigits, 16)

    def repl(m):
        out = m.group(1) + one(m.group(2))
        if m.group(3) is not None:
            out += '/' + one(m.group(3))
        return out
    return '\n'.join(_MARK_ARG.sub(repl, line) for line in data.split('\n'))


# --------------------------------------------------------------------------

def _read(path):
    if path == '-':
        return sys.stdin.read()
    with open(path, encoding='utf-8') as f:
        return f.read()


def main(argv):
    usage = ('usage: iptables_sort.py [--short-marks] [--unordered-chain TABLE:CHAIN]... '
             '[--check-jumps|--check-sorted] FILE')
    args = argv[1:]
    mode = 'sort'
    shortm = False
    unordered = []
    path = None
    i = 0
    while i < len(args):
        a = args[i]
        if a in ('--check-jumps', '--check-sorted'):
            if mode != 'sort':
                print(usage, file=sys.stderr)
                return 2
            mode = a[2:]
        elif a == '--short-marks':
            shortm = True
        elif a == '--unordered-chain' and i + 1 < len(args) and ':' in args[i + 1]:
            unordered.append(tuple(args[i + 1].split(':', 1)))
            i += 1
        elif path is None and (a == '-' or not a.startswith('--')):
            path = a
        else:
            print(usage, file=sys.stderr)
            return 2
        i += 1
    if path is None:
        print(usage, file=sys.stderr)
        return 2
    data = _read(path)
    if shortm:
        data = short_marks(data)
    if mode == 'check-jumps':
        err = check_iptables_rule_jumps(data.lstrip(' \t\n'))
        if err:
            print('%s: %s' % (path, err), file=sys.stderr)
            return 1
        return 0
    try:
        out = sort_iptables_rules(data, unordered)
    except ParseError as e:
        print('%s: %s' % (path, e), file=sys.stderr)
        return 1
    if mode == 'check-sorted':
        expected = data.lstrip(' \t\n')
        if out != expected:
            sys.stdout.writelines(difflib.unified_diff(
                expected.splitlines(True), out.splitlines(True), path, path + ' (sorted)'))
            return 1
        return 0
    sys.stdout.write(out)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
