#!/usr/bin/python3
"""A local OTLP/HTTP receiver for the otlp e2e case (stdlib only, loopback only).

Usage: otlp_receiver.py PORT_FILE REQUESTS_FILE

Listens on 127.0.0.1, port 0; writes its port to PORT_FILE once it listens. Every request
is appended to REQUESTS_FILE as one JSON line: {"n", "method", "path", "content_type",
"status", "body"} (body parsed as JSON, or the raw text under "raw" when it is not JSON).
The first request is answered 503 with Retry-After: 1 (the exporter must send that batch
again), every later one 200 with {} (an ExportLogsServiceResponse without partial success).
"""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port_file, requests_file = sys.argv[1], sys.argv[2]
count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as an OTLP exporter expects

    def do_POST(self):
        global count
        count += 1
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length).decode("utf-8", "replace")
        status = 503 if count == 1 else 200
        entry = {"n": count, "method": "POST", "path": self.path,
                 "content_type": self.headers.get("Content-Type", ""), "status": status}
        try:
            entry["body"] = json.loads(raw)
        except ValueError:
            entry["raw"] = raw
        with open(requests_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        reply = b"{}" if status == 200 else b"busy"
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json" if status == 200 else "text/plain")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):  # the requests file is the record
        pass


server = HTTPServer(("127.0.0.1", 0), Handler)
with open(port_file + ".tmp", "w", encoding="utf-8") as f:
    f.write(str(server.server_address[1]))
# Renamed into place: a reader never sees a partly written port.
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
