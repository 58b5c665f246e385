#!/usr/bin/python3
"""Parses a scrape of `corrald --metrics-listen` with Prometheus' own Python parser
(Debian's python3-prometheus-client) and checks it; prints the value of the events counter
for TYPE/OPERATION/ACTION (to compare two scrapes).

Usage: metrics_check.py FILE TYPE OPERATION ACTION [NAME=VALUE ...]
  NAME=VALUE: the unlabelled gauge or counter NAME (without _total) has this value;
  NAME>=VALUE: at least this value. Exit 1 with the reason on any failure."""
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def fail(msg):
    print("metrics_check: " + msg, file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) < 5:
        fail(__doc__)
    path, want_type, want_op, want_action = sys.argv[1:5]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        families = {fam.name: fam for fam in text_string_to_metric_families(text)}
    except Exception as e:  # the parser raises ValueError and others on bad input
        fail("not the Prometheus text format: %r" % e)

    def family(name, kind):
        fam = families.get(name)
        if fam is None:
            fail("no family %s (have: %s)" % (name, ", ".join(sorted(families))))
        if fam.type != kind:
            fail("%s is a %s, want %s" % (name, fam.type, kind))
        return fam

    # The events counter (the parser names a counter family without its _total suffix).
    events = family("corral_events", "counter")
    value = None
    for s in events.samples:
        if s.name != "corral_events_total":
            continue
        if (s.labels.get("type"), s.labels.get("operation"), s.labels.get("action")) == (
                want_type, want_op, want_action):
            value = s.value
    if value is None:
        fail("no corral_events_total{type=%r,operation=%r,action=%r}; samples: %s"
             % (want_type, want_op, want_action, events.samples))

    # The decision latency histogram: cumulative buckets in increasing le, +Inf == count.
    hist = family("corral_permission_decision_seconds", "histogram")
    buckets, count, total = [], None, None
    for s in hist.samples:
        if s.name.endswith("_bucket"):
            buckets.append((float(s.labels["le"]), s.value))
        elif s.name.endswith("_count"):
            count = s.value
        elif s.name.endswith("_sum"):
            total = s.value
    if count is None or total is None or len(buckets) < 2:
        fail("histogram without _count, _sum or buckets: %s" % hist.samples)
    if not count > 0:
        fail("no permission decision was timed (count %s)" % count)
    les = [le for le, _ in buckets]
    if les != sorted(les) or len(set(les)) != len(les):
        fail("bucket bounds not increasing: %s" % les)
    if not math.isinf(les[-1]):
        fail("the last bucket is not +Inf: %s" % les)
    if buckets[-1][1] != count:
        fail("+Inf bucket %s != count %s" % (buckets[-1][1], count))
    for (_, a), (le, b) in zip(buckets, buckets[1:]):
        if b < a:
            fail("buckets not cumulative at le=%s: %s" % (le, buckets))
    if les[0] > 1e-5 or les[-2] < 0.1:
        fail("buckets do not span 10 us .. 100 ms: %s" % les)
    if not 0 < total < count * 1.0:  # each decision well under a second here
        fail("implausible _sum %s for %s decisions" % (total, count))

    # Unlabelled gauges and counters asked for on the command line.
    singles = {}
    for fam in families.values():
        for s in fam.samples:
            if not s.labels:
                singles[s.name] = s.value
    for arg in sys.argv[5:]:
        op = ">=" if ">=" in arg else "="
        name, want = arg.split(op, 1)
        have = singles.get(name, singles.get(name + "_total"))
        if have is None:
            fail("no sample %s" % name)
        if (op == "=" and have != float(want)) or (op == ">=" and have < float(want)):
            fail("%s is %s, want %s%s" % (name, have, op, want))

    print(int(value))


if __name__ == "__main__":
    main()
