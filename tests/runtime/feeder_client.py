"""A KubeArmor client in a second language (issue 11): Python stubs generated from the
project's proto/api/kubearmor.proto with grpc_tools (Debian's python3-grpc-tools) read a
Corral agent's feeder.LogService.

  feeder_client.py STUB_DIR ADDRESS alerts|logs COUNT TIMEOUT_S

Checks first that the generated messages have KubeArmor's field numbers (KUBEARMOR-WIRE.md),
that HealthCheck echoes its nonce and that grpc.health.v1 says SERVING; then prints COUNT
events of WatchAlerts (filter "policy") or WatchLogs (filter "system"), one JSON object a
line, and exits 0; 1 with a reason on any failure or timeout.
"""
import json
import sys
import threading

sys.path.insert(0, sys.argv[1])
import grpc  # noqa: E402
import kubearmor_pb2 as pb  # noqa: E402
import kubearmor_pb2_grpc as pb_grpc  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402

# KUBEARMOR-WIRE.md's tables: the field numbers existing clients depend on.
ALERT = ["Timestamp", "UpdatedTime", "ClusterName", "HostName", "NamespaceName", "PodName",
         "ContainerID", "ContainerName", "HostPID", "PPID", "PID", "UID", "PolicyName",
         "Severity", "Tags", "Message", "Type", "Source", "Operation", "Resource", "Data",
         "Action", "Result", "ContainerImage", "ParentProcessName", "ProcessName", "HostPPID",
         "Enforcer", "Labels", "ATags", "Owner", "Cwd", "TTY", "MaxAlertsPerSec",
         "DroppingAlertsInterval", "ExecEvent", "KubeArmorVersion", "NodeID", "ProcessHash",
         "ParentHash", "ResourceHash", "HashAlgo", "EventData", "UserName"]
LOG = ["Timestamp", "UpdatedTime", "ClusterName", "HostName", "NamespaceName", "PodName",
       "ContainerID", "ContainerName", "HostPID", "PPID", "PID", "UID", "Type", "Source",
       "Operation", "Resource", "Data", "Result", "ContainerImage", "ParentProcessName",
       "ProcessName", "HostPPID", "Labels", "Owner", "Cwd", "TTY", "ExecEvent", "NodeID",
       "ProcessHash", "ParentHash", "ResourceHash", "HashAlgo", "EventData", "UserName"]
MESSAGE = ["Timestamp", "UpdatedTime", "ClusterName", "HostName", "HostIP", "Type", "Level",
           "Message"]


def fail(why):
    print("feeder_client: " + why, file=sys.stderr)
    sys.exit(1)


def check_numbers(message, names):
    for number, name in enumerate(names, start=1):
        field = message.DESCRIPTOR.fields_by_name.get(name)
        if field is None or field.number != number:
            fail("%s.%s is not field %d" % (message.DESCRIPTOR.name, name, number))


def main():
    address, kind, count, timeout = sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    check_numbers(pb.Alert, ALERT)
    check_numbers(pb.Log, LOG)
    check_numbers(pb.Message, MESSAGE)
    if pb.DESCRIPTOR.package != "feeder":
        fail("package is %s, not feeder" % pb.DESCRIPTOR.package)
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.LogServiceStub(channel)
    if stub.HealthCheck(pb.NonceMessage(nonce=4242), timeout=5).Retval != 4242:
        fail("HealthCheck did not echo the nonce")
    health = channel.unary_unary("/grpc.health.v1.Health/Check",
                                 request_serializer=lambda _: b"",
                                 response_deserializer=lambda b: b)
    if health(None, timeout=5) != b"\x08\x01":
        fail("grpc.health.v1.Health/Check is not SERVING")
    message = next(stub.WatchMessages(pb.RequestMessage(Filter="all"), timeout=5))
    if "feeder.LogService" not in message.Message:
        fail("WatchMessages: %s" % message)
    print("ready", flush=True)
    if kind == "alerts":
        events = stub.WatchAlerts(pb.RequestMessage(Filter="policy"))
    else:
        events = stub.WatchLogs(pb.RequestMessage(Filter="system"))
    timer = threading.Timer(timeout, events.cancel)
    timer.daemon = True
    timer.start()
    seen = 0
    try:
        for e in events:
            print(json.dumps(MessageToDict(e, preserving_proto_field_name=True)), flush=True)
            seen += 1
            if seen == count:
                events.cancel()
                break
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            fail("stream: %s" % e)
    if seen < count:
        fail("%d of %d %s within %.0f s" % (seen, count, kind, timeout))
    sys.exit(0)


main()
