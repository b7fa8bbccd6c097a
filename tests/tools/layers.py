#!/usr/bin/env python3
"""The layers of p11km, checked on the built objects (doc/HACKING.md).

The file-level call graph comes from `nm` of the objects of the library and
the programs: file A -> file B when A uses a symbol B defines.  It must have
no circle, and no file may call a file of a higher layer than its own, in
the declared order

    util <- uri <- p11 <- x509 <- key <- store/bind/ca/track <- op <- cli <- cmd

(LAYERS below maps file-name prefixes to layers; a file whose name matches
no row is an error, so a new kind of file needs a row).  The few calls not
removed yet (upward, or closing a circle) are in ALLOWED, each with why and
the issue that removes it; circles are found on the graph without them, so
any NEW circle or upward call fails.

    layers.py BUILD_DIR [SRC_DIR]   check the build (objects of SRC_DIR/src/*.c only)
                                    and, with SRC_DIR, the sizes (no file over
                                    MAX_LINES); print the figures
    layers.py --figures BUILD_DIR SRC_DIR
                                    only the figures of issue 9 (make figures)
    layers.py --self-test           check the checker on made-up graphs
Exit 0 clean, 1 a violation, 2 usage or an unreadable build.
"""
import glob
import os
import re
import subprocess
import sys
from collections import defaultdict

# Layers, lowest first.  Files of one layer may call each other (no circle).
ORDER = ['util', 'uri', 'p11', 'x509', 'key', 'service', 'op', 'cli', 'cmd']
# (file-name pattern, layer): the first match wins.  "service" is the
# store/bind/ca/track layer: stores, server bindings, CA clients, tracking.
LAYERS = [
    (r'^(util|util-.*|pin|json|http|http-.*)$', 'util'),
    (r'^uri$', 'uri'),
    (r'^p11-.*$', 'p11'),
    (r'^x509-.*$', 'x509'),
    (r'^(keys|key-.*)$', 'key'),
    (r'^(store|store-.*|bind|bind-.*|ca|ca-.*|track|track-.*)$', 'service'),
    (r'^(op|op-.*)$', 'op'),
    (r'^(cli|cli-.*)$', 'cli'),
    (r'^(main|cmd-.*|p11km-engine-probe)$', 'cmd'),
]

# Calls kept for now, upward or closing a circle: (caller file, called
# file): why, and which issue removes it.  Circles are looked for without
# these calls; an entry whose call is gone is reported, to be deleted.
# None today: p11-keygen -> x509-key (upward) went with key-gen.c into the
# key layer, and the store kinds' calls back into store-file.c went with
# the store interface (store.c, store-common.c).  An entry looks like
#     ('p11-foo', 'x509-bar'): 'why; issue N removes it',
ALLOWED = {
}

# The figures when issue 9 was filed (main at 4d1d0f9), printed next to
# today's; and the cmd layer at the start of its second session (main at
# 2044f32), when much of the commands' work still lived in cmd-*.c.
BEFORE = {
    'circles': 3,  # p11-module<->p11-session, store-file<->nss<->system<->token, cmd-*<->main
    'upward calls': 1,  # p11-keygen -> x509-key
    'largest files': 'store-file.c 986, bind-check.c 803, cmd-cert.c 762',
    'over limit': 2,  # store-file.c, bind-check.c
    'cmd lines': '4076 of 14075; 7313 of 30599 at 2044f32',
    'store kind': '9 files in about 14 places',
}

# Limits layers.sh enforces on the sources: no file over MAX_LINES; and
# cmd-*.c + main.c under CMD_MAX_LINES (None: printed, not enforced).
MAX_LINES = 800
CMD_MAX_LINES = 1800


def layer_of(f):
    for pat, layer in LAYERS:
        if re.match(pat, f):
            return layer
    return None


def file_name(obj):
    f = os.path.basename(obj)[:-2]
    if f.startswith('p11km-engine-probe'):
        return 'p11km-engine-probe'
    return re.sub(r'^(libp11km_la-|p11km-)', '', f)


def graph_from_build(build, src=None):
    objs = glob.glob(os.path.join(build, 'src/.libs/*.o')) + glob.glob(os.path.join(build, 'src/*.o'))
    if src is not None:  # an object left from a renamed or deleted source is no file
        objs = [o for o in objs if os.path.exists(os.path.join(src, 'src', file_name(o) + '.c'))]
    if not objs:
        print('layers.py: no objects under %s/src: build first' % build, file=sys.stderr)
        sys.exit(2)
    defs, uses = {}, defaultdict(set)
    for o in objs:
        f = file_name(o)
        uses[f]  # every object is a node, even one that calls nothing
        out = subprocess.run(['nm', o], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            p = line.split()
            if len(p) == 3 and p[1] in 'TDBRC' and not p[2].startswith('__odr_asan'):
                defs[p[2]] = f
            elif len(p) == 2 and p[0] == 'U':
                uses[f].add(p[1])
    edges = {f: set() for f in uses}
    for f, us in uses.items():
        for s in us:
            g = defs.get(s)
            if g is not None and g != f:
                edges[f].add(g)
    return edges


def circles(edges):
    """Strongly connected components of more than one file (Tarjan)."""
    idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        idx[v] = low[v] = c[0]
        c[0] += 1
        st.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in idx:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], idx[w])
        if low[v] == idx[v]:
            comp = []
            while True:
                w = st.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in idx:
            visit(v)
    return out


def check(edges, allowed=ALLOWED):
    """(problems, upward edges allowed, stale allowlist entries)."""
    problems, kept = [], []
    for f in sorted(edges):
        if layer_of(f) is None:
            problems.append('%s: no layer for this file name: add a row to LAYERS in '
                            'tests/tools/layers.py (and doc/HACKING.md)' % f)
    rest = {f: set() for f in edges}
    for f in sorted(edges):
        for g in sorted(edges[f]):
            lf, lg = layer_of(f), layer_of(g)
            if (f, g) in allowed:
                kept.append((f, g))
                continue
            if lf is None or lg is None or ORDER.index(lg) <= ORDER.index(lf):
                rest[f].add(g)
                continue
            problems.append('upward call: %s (%s) -> %s (%s)' % (f, lf, g, lg))
            rest[f].add(g)
    for comp in circles(rest):
        problems.append('circle: ' + ' <-> '.join(comp))
    stale = sorted(e for e in allowed if e[1] not in edges.get(e[0], ()))
    return problems, kept, stale


def source_lines(src):
    files = glob.glob(os.path.join(src, 'src/*.c'))
    return {os.path.basename(f): sum(1 for _ in open(f, errors='replace')) for f in files}


def cmd_lines(lines):
    return sum(n for f, n in lines.items() if f.startswith('cmd-') or f == 'main.c')


def size_problems(lines, max_lines=MAX_LINES, cmd_max=CMD_MAX_LINES):
    """Files over max_lines, and the cmd layer over cmd_max."""
    out = ['%s: %d lines, over %d: split it' % (f, n, max_lines)
           for f, n in sorted(lines.items()) if n > max_lines]
    if cmd_max is not None and cmd_lines(lines) >= cmd_max:
        out.append('cmd-*.c + main.c: %d lines, not under %d: move the work into the library'
                   % (cmd_lines(lines), cmd_max))
    return out


def store_kind_files(src):
    """For each store kind in store.c's table: the files besides its own
    that name it (its ops or its source file): what adding a kind touches."""
    table = open(os.path.join(src, 'src/store.c'), errors='replace').read()
    out = {}
    for ops, kind in re.findall(r'X\((p11km_store_(\w+)_ops)', table):
        own = 'store-%s.c' % kind
        names = re.compile(r'\b%s\b|\b%s\b' % (ops, re.escape(own)))
        touched = []
        for f in sorted(glob.glob(os.path.join(src, 'src/*.[ch]')) +
                        glob.glob(os.path.join(src, 'include/p11km/*.h')) +
                        [os.path.join(src, 'Makefile.am')]):
            if os.path.basename(f) == own:
                continue
            code = re.sub(r'/\*.*?\*/|#[^\n]*\n' if f.endswith('.am') else r'/\*.*?\*/', ' ',
                          open(f, errors='replace').read(), flags=re.S)
            if names.search(code):
                touched.append(os.path.relpath(f, src))
        out[own] = touched
    return out


def figures(src):
    lines = source_lines(src)
    big = sorted(lines.items(), key=lambda x: -x[1])[:3]
    print('largest files: %s (before: %s)' % (', '.join('%s %d' % x for x in big),
                                               BEFORE['largest files']))
    print('over %d lines: %d (before: %d)' % (
        MAX_LINES, sum(1 for n in lines.values() if n > MAX_LINES), BEFORE['over limit']))
    print('lines in cmd-*.c + main.c: %d of %d (before: %s; limit %s)' % (
        cmd_lines(lines), sum(lines.values()), BEFORE['cmd lines'],
        CMD_MAX_LINES if CMD_MAX_LINES is not None else 'not enforced yet'))
    kinds = store_kind_files(src)
    most = max(kinds.values(), key=len) if kinds else []
    print('adding a store kind: 1 new file + %d touched (%s) (before: %s)' % (
        len(most), ', '.join(most), BEFORE['store kind']))


def self_test():
    """The checker fails where it must, on made-up graphs."""
    bad = 0

    def expect(name, edges, want, allowed=None):
        nonlocal bad
        problems, _, _ = check(edges, {} if allowed is None else allowed)
        got = ' | '.join(problems)
        if (want is None and problems) or (want is not None and want not in got):
            bad += 1
            print('not ok - %s: got [%s], want %s' % (name, got, want or 'no problem'))
        else:
            print('ok - %s' % name)

    clean = {'main': {'cmd-key'}, 'cmd-key': {'p11-session', 'util'}, 'p11-session': {'util'},
             'util': set()}
    expect('a clean graph passes', clean, None)
    expect('a circle in one layer fails',
           {'p11-module': {'p11-session'}, 'p11-session': {'p11-module'}},
           'circle: p11-module <-> p11-session')
    expect('a circle of three fails',
           {'store-a': {'store-b'}, 'store-b': {'bind-c'}, 'bind-c': {'store-a'}},
           'circle: bind-c <-> store-a <-> store-b')
    expect('an upward call fails', {'util': {'p11-session'}, 'p11-session': set()},
           'upward call: util (util) -> p11-session (p11)')
    expect('p11 calling x509 fails', {'p11-keygen': {'x509-key'}, 'x509-key': set()},
           'upward call: p11-keygen (p11) -> x509-key (x509)')
    expect('an allowed upward call passes', {'p11-keygen': {'x509-key'}, 'x509-key': set()},
           None, {('p11-keygen', 'x509-key'): 'test'})
    expect('a circle through an allowed edge is no circle',
           {'p11-keygen': {'x509-key'}, 'x509-key': {'p11-keygen'}}, None,
           {('p11-keygen', 'x509-key'): 'test'})
    expect('a file with an unknown prefix fails', {'frob': set()}, 'frob: no layer')
    expect('main calling a command and back fails', {'main': {'cmd-x'}, 'cmd-x': {'main'}},
           'circle: cmd-x <-> main')
    for name, lines, cmd_max, want in [
            ('a file over the limit fails', {'util.c': 801, 'uri.c': 10}, None,
             'util.c: 801 lines, over 800'),
            ('a file at the limit passes', {'util.c': 800}, None, None),
            ('the cmd layer at its limit fails', {'cmd-a.c': 700, 'cmd-b.c': 700, 'main.c': 400},
             1800, 'cmd-*.c + main.c: 1800 lines, not under 1800'),
            ('the cmd layer under its limit passes',
             {'cmd-a.c': 700, 'cmd-b.c': 700, 'main.c': 399, 'op-a.c': 5}, 1800, None)]:
        got = ' | '.join(size_problems(lines, 800, cmd_max))
        if (want is None and got) or (want is not None and want not in got):
            bad += 1
            print('not ok - %s: got [%s]' % (name, got))
        else:
            print('ok - %s' % name)
    _, _, stale = check({'p11-keygen': set(), 'x509-key': set()},
                        {('p11-keygen', 'x509-key'): 'test'})
    if stale != [('p11-keygen', 'x509-key')]:
        bad += 1
        print('not ok - a stale allowlist entry is found')
    else:
        print('ok - a stale allowlist entry is found')
    return 1 if bad else 0


def main(argv):
    if len(argv) == 2 and argv[1] == '--self-test':
        return self_test()
    figures_only = len(argv) == 4 and argv[1] == '--figures'
    if figures_only:
        argv = argv[:1] + argv[2:]
    if len(argv) not in (2, 3) or argv[1].startswith('-'):
        print(__doc__, file=sys.stderr)
        return 2
    edges = graph_from_build(argv[1], argv[2] if len(argv) == 3 else None)
    problems, kept, stale = check(edges)
    if len(argv) == 3:
        problems += size_problems(source_lines(argv[2]))
    for p in problems:
        if not figures_only:
            print('layers: ' + p)
    for f, g in kept:
        print('allowed call: %s -> %s: %s' % (f, g, ALLOWED[(f, g)]))
    for f, g in stale:
        print('note: allowlist entry %s -> %s: the call is gone; delete the entry' % (f, g))
    print('files: %d, calls between files: %d' % (len(edges), sum(len(v) for v in edges.values())))
    ncirc = len(circles(edges))
    print('circles: before %d, now %d (counting the allowed calls)' % (BEFORE['circles'], ncirc))
    up = [e for e in kept if ORDER.index(layer_of(e[1])) > ORDER.index(layer_of(e[0]))]
    print('upward calls: before %d, now %d (%d of them allowed)' % (
        BEFORE['upward calls'], len(up) + sum(p.startswith('upward') for p in problems),
        len(up)))
    print('calls allowed in a circle: %d' % (len(kept) - len(up)))
    if len(argv) == 3:
        figures(argv[2])
    if figures_only:
        print('problems: %d%s' % (len(problems), ' (run tests/cli/layers.sh)' if problems else ''))
        return 0
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
