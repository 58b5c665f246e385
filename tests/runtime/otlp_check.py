#!/usr/bin/python3
"""Checks what otlp_receiver.py recorded against the alerts `corral logs --json` shows.

Usage: otlp_check.py REQUESTS_FILE ALERTS_FILE

ALERTS_FILE: the alerts that must have been exported, one JSON object a line. Checks every
request's path, Content-Type and shape (OTLP JSON encoding of ExportLogsServiceRequest),
that each alert arrived exactly once in the requests answered 200 with its fields as record
attributes and its workload as resource attributes, and that the first request (answered
503) held alerts that were sent again. Exit 1 with the first difference.
"""
import json
import sys
from datetime import datetime, timezone

ANY_VALUE_KINDS = {"stringValue", "boolValue", "intValue", "doubleValue", "arrayValue",
                   "kvlistValue", "bytesValue"}


def fail(msg):
    print("otlp_check: " + msg)
    sys.exit(1)


def digits(v):
    return isinstance(v, str) and v.isdigit()


def check_any_value(v, where):
    if not isinstance(v, dict) or len(v) != 1 or next(iter(v)) not in ANY_VALUE_KINDS:
        fail(f"{where}: not an AnyValue object: {v!r}")
    if "intValue" in v and not (isinstance(v["intValue"], str) and
                                digits(v["intValue"].removeprefix("-"))):
        fail(f"{where}: intValue must be a string of digits (int64 in proto3 JSON): {v!r}")
    if "arrayValue" in v:
        for i, e in enumerate(v["arrayValue"].get("values", [])):
            check_any_value(e, f"{where}[{i}]")


def key_values(lst, where):
    if not isinstance(lst, list):
        fail(f"{where}: not a list of KeyValue: {lst!r}")
    out = {}
    for kv in lst:
        if set(kv) != {"key", "value"} or not isinstance(kv["key"], str):
            fail(f"{where}: not a KeyValue: {kv!r}")
        check_any_value(kv["value"], f"{where}.{kv['key']}")
        out[kv["key"]] = kv["value"]
    return out


def plain(v):
    """An AnyValue as the JSON value format.cpp writes: string, int or list of strings."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [plain(e) for e in v["arrayValue"].get("values", [])]
    return v


def records(req):
    """(resource attributes, record) of every log record of a request, checking the shape."""
    body = req.get("body")
    if not isinstance(body, dict) or not isinstance(body.get("resourceLogs"), list):
        fail(f"request {req['n']}: no resourceLogs list: {req!r}")
    out = []
    for i, rl in enumerate(body["resourceLogs"]):
        where = f"request {req['n']} resourceLogs[{i}]"
        res = key_values(rl.get("resource", {}).get("attributes"), where + ".resource")
        for sl in rl.get("scopeLogs", []):
            scope = sl.get("scope", {})
            if scope.get("name") != "corral" or not isinstance(scope.get("version"), str):
                fail(f"{where}: scope {scope!r}, want name corral and a version")
            for j, r in enumerate(sl.get("logRecords", [])):
                w = f"{where} logRecords[{j}]"
                for k in ("timeUnixNano", "observedTimeUnixNano"):
                    if not digits(r.get(k)):
                        fail(f"{w}: {k} must be a string of digits (fixed64): {r.get(k)!r}")
                sn = r.get("severityNumber")
                if not isinstance(sn, int) or isinstance(sn, bool) or not 1 <= sn <= 24:
                    fail(f"{w}: severityNumber must be an int 1..24: {sn!r}")
                if not isinstance(r.get("severityText"), str):
                    fail(f"{w}: no severityText")
                if not isinstance(r.get("body", {}).get("stringValue"), str):
                    fail(f"{w}: body must be an AnyValue stringValue: {r.get('body')!r}")
                attrs = key_values(r.get("attributes"), w + ".attributes")
                out.append((res, r, {k: plain(v) for k, v in attrs.items()}))
    return out


def unix_nanos(rfc3339):
    secs, frac = rfc3339.rstrip("Z").split(".")
    t = datetime.strptime(secs, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 10**9 + int(frac.ljust(9, "0"))


def main():
    reqs = [json.loads(line) for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
    alerts = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8") if line.strip()]
    if not alerts:
        fail("no alerts to look for")
    if not reqs:
        fail("the receiver got no request")
    for req in reqs:
        if req["path"] != "/v1/logs":
            fail(f"request {req['n']} to {req['path']}, want /v1/logs")
        if req["content_type"] != "application/json":
            fail(f"request {req['n']}: Content-Type {req['content_type']!r}")
    key = lambda a: (a.get("UpdatedTime"), a.get("PolicyName"), a.get("Resource"))  # noqa: E731
    accepted = [x for req in reqs if req["status"] == 200 for x in records(req)]
    first = reqs[0]
    if first["status"] != 503:
        fail("the first request was not the one answered 503")
    retried = {key(a) for _, _, a in records(first)}
    for alert in alerts:
        found = [x for x in accepted if key(x[2]) == key(alert)]
        if len(found) != 1:
            fail(f"alert {key(alert)} arrived {len(found)} times, want exactly once")
        res, rec, attrs = found[0]
        for k, v in alert.items():
            if attrs.get(k) != v:
                fail(f"record attribute {k} is {attrs.get(k)!r}, the alert has {v!r}")
        want_res = {"host.name": alert.get("HostName"), "k8s.cluster.name": alert.get("ClusterName"),
                    "k8s.namespace.name": alert.get("NamespaceName"),
                    "k8s.pod.name": alert.get("PodName"),
                    "k8s.container.name": alert.get("ContainerName"),
                    "container.id": alert.get("ContainerID"), "service.name": "corral"}
        for k, v in want_res.items():
            if v is None:
                continue
            if res.get(k) != {"stringValue": v}:
                fail(f"resource attribute {k} is {res.get(k)!r}, want {v!r}")
        if int(rec["timeUnixNano"]) != unix_nanos(alert["UpdatedTime"]):
            fail(f"timeUnixNano {rec['timeUnixNano']} is not UpdatedTime {alert['UpdatedTime']}")
        if (rec["severityNumber"], rec["severityText"]) != (13, "WARN"):
            fail(f"a blocked alert has severity {rec['severityNumber']} {rec['severityText']}")
        retried.discard(key(alert))
    if len(retried) == len({key(a) for _, _, a in records(first)}):
        fail("the request answered 503 held none of the alerts (nothing proves the retry)")
    for k in retried:
        if not any(key(x[2]) == k for x in accepted):
            fail(f"{k} of the request answered 503 never arrived")
    print(f"otlp_check: {len(alerts)} alerts, {len(reqs)} requests, all good")


main()
