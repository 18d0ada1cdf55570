#!/usr/bin/env python3
"""cgtop.py -- the top functions of a callgrind profile by self cost.

usage: cgtop.py FILE [-n TOP] [--per N] [--by-object]
Prints each function's (or shared object's) own instructions, its share of
the total and, with --per N, the instructions per request. A small reader
of the callgrind format (name compression, calls= lines), because the
profiles tools/bench/evaluate_instr.sh keeps are taken with --dump-line=no.
"""
import argparse
import collections
import re


def read(path):
    names = {"ob": {}, "fn": {}, "cfn": {}, "cob": {}}
    self_cost = collections.Counter()
    ob_cost = collections.Counter()
    ob = fn = None
    skip_next = False
    total = 0
    comp = re.compile(r"^(ob|fn|cfn|cob|fl|fi|fe|cfi|cfl)=\((\d+)\)(?: (.*))?$")
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        m = comp.match(line)
        if m:
            kind, ident, name = m.groups()
            table = "fn" if kind in ("fn", "cfn") else "ob" if kind in ("ob", "cob") else None
            if table is None:
                continue
            if name is not None:
                names[table][ident] = name
            if kind == "ob":
                ob = names["ob"].get(ident, ident)
            elif kind == "fn":
                fn = names["fn"].get(ident, ident)
            continue
        if line.startswith("calls="):
            skip_next = True  # the next cost line is the call's inclusive cost
            continue
        if line and (line[0].isdigit() or line[0] in "+-*"):
            if skip_next:
                skip_next = False
                continue
            parts = line.split()
            if len(parts) >= 2:
                c = int(parts[1])
                self_cost[(ob, fn)] += c
                ob_cost[ob] += c
                total += c
    return self_cost, ob_cost, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("-n", type=int, default=25)
    ap.add_argument("--per", type=int, default=0)
    ap.add_argument("--by-object", action="store_true")
    a = ap.parse_args()
    self_cost, ob_cost, total = read(a.file)
    rows = ob_cost.items() if a.by_object else self_cost.items()
    print("total %d instructions%s" % (total, " (%d per request)" % (total // a.per) if a.per else ""))
    for key, c in sorted(rows, key=lambda kv: -kv[1])[: a.n]:
        if a.by_object:
            name = key
        else:
            ob, fn = key
            name = "%s  [%s]" % (fn, (ob or "?").rsplit("/", 1)[-1])
        per = "%10d/req " % (c // a.per) if a.per else ""
        print("%5.1f%% %s %s" % (100.0 * c / total, per, name))


if __name__ == "__main__":
    main()
