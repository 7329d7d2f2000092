"""A minimal OTLP/HTTP collector for tests: decodes protobuf ``ExportTraceServiceRequest``s on
``POST /v1/traces`` and appends one JSON line per span to a file. Prints its port, then serves.

    python otlp_collector.py OUT.jsonl
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/traces" or self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(404)
            self.end_headers()
            return
        req = ExportTraceServiceRequest.FromString(body)
        lines = []
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    attrs = {kv.key: kv.value.WhichOneof("value") and getattr(kv.value, kv.value.WhichOneof("value"))
                             for kv in sp.attributes if kv.value.WhichOneof("value") in
                             ("string_value", "int_value", "double_value", "bool_value")}
                    lines.append(json.dumps({"trace_id": sp.trace_id.hex(), "span_id": sp.span_id.hex(),
                                             "parent_id": sp.parent_span_id.hex() or None, "name": sp.name,
                                             "run_id": attrs.get("lab.run_id"), "kind": attrs.get("lab.kind")}))
        with open(sys.argv[1], "a") as f:
            f.write("".join(line + "\n" for line in lines))
        out = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
