"""A webhook receiver for the forwarding tests: HTTPS on 127.0.0.1 (port 0), checks every
request's detached signature (X-Canh-Signature: sha256=HMAC(secret, timestamp + "." + body)),
keeps the Idempotency-Key of each alert it accepts, and misbehaves on purpose: the first FAIL
requests get 503 with Retry-After: 1, and an alert from REJECT_IP gets 400.

usage: webhook_receiver.py DIR SECRET FAIL REJECT_IP   (DIR has server.crt/server.key; the
port is written to DIR/port; one JSON line per accepted request to DIR/received.jsonl)"""
import hashlib
import hmac
import http.server
import json
import os
import ssl
import sys

directory, secret, fail, reject_ip = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
state = {"requests": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        state["requests"] += 1
        ts = self.headers.get("X-Canh-Timestamp", "")
        want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, self.headers.get("X-Canh-Signature", "")):
            return self.answer(401, {"error": "bad signature"})
        if state["requests"] <= fail:
            return self.answer(503, {"error": "try later"}, {"Retry-After": "1"})
        alert = json.loads(body)
        if alert.get("source_ip") == reject_ip:
            return self.answer(400, {"error": "this alert is refused"})
        with open(os.path.join(directory, "received.jsonl"), "a") as f:
            f.write(json.dumps({"key": self.headers.get("Idempotency-Key"), "alert": alert}) + "\n")
        self.answer(202, {"accepted": alert["id"]})

    def answer(self, status, obj, headers=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(directory, "server.crt"), os.path.join(directory, "server.key"))
server.socket = ctx.wrap_socket(server.socket, server_side=True)
with open(os.path.join(directory, "port.tmp"), "w") as f:
    f.write(str(server.server_address[1]))
os.rename(os.path.join(directory, "port.tmp"), os.path.join(directory, "port"))
server.serve_forever()
