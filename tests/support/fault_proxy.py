"""A fault-injecting HTTP proxy for tests: forwards everything to moto, except that the first
N calls of chosen operations get an injected error response (IAM propagation, throttling).

Each fault: {"operation", "times", and either "code"/"message" (an error answer, with
"protocol": "query" for XML services) or "delay" (seconds to hold the call before forwarding)}.

FAULTS_JSON may also be {"faults": [...], "lose": {"rate": 0.3, "seed": 7}}: then, besides
those, each call is lost after it was applied with that probability (seeded, so a series can
be replayed): forwarded to moto, its answer read, and the connection closed without a word, as
a NAT or load balancer timeout does. Each lost call is logged as "lost OPERATION". With
"log_all": true every call moto answered is logged as "applied OPERATION" (for a test that
kills the client after the k-th one). {"mixed": {"rate": 0.2, "seed": 3}} picks, on that share
of calls, one of: a throttling answer (in the call's protocol), an empty 503, a connection
dropped before forwarding, a slow answer (0.3 s), an answer lost after the call was applied;
each is logged as "KIND OPERATION". {"latency": 0.05} holds every call that long before
forwarding it (as a real region answers); {"timeline": true} logs every call as
"call OPERATION START END BYTES PATH" (seconds since the epoch; the request body's size), for
benchmarks. {"rate": {"per_second": R,
"burst": B}} gives each service (as the call's signature names it) a token bucket, as AWS
throttles an account's calls: a call that finds it empty gets a throttling answer in its
protocol, logged as "throttled SERVICE OPERATION"; the others are logged as "answered SERVICE".

usage: fault_proxy.py PORT UPSTREAM_PORT FAULTS_JSON LOG_FILE
"""
import json
import random
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

port, upstream, faults, log_path = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
lose = None
mixed = None
log_all = False
latency = 0.0
timeline = False
rate = None
if isinstance(faults, dict):
    rate = faults.get("rate")
    latency = faults.get("latency", 0.0)
    timeline = faults.get("timeline", False)
    lose = faults.get("lose")
    mixed = faults.get("mixed")
    log_all = faults.get("log_all", False)
    faults = faults.get("faults", [])
rng = random.Random((lose or mixed)["seed"]) if (lose or mixed) else None
MIXED = ["throttle", "5xx", "drop-before", "slow", "lost-after"]


def throttle_answer(headers, body):
    """A throttling answer in the protocol of the call: (status, headers, payload)."""
    if headers.get("X-Amz-Target"):
        return 400, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": "ThrottlingException"}, \
            json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
    if b"Action=" in body[:200]:
        return 400, {"Content-Type": "text/xml"}, (
            "<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
            "<RequestId>fault</RequestId></ErrorResponse>").encode()
    if "amz-sdk-invocation-id" in {k.lower() for k in headers.keys()} and "s3" in headers.get("Authorization", ""):
        return 503, {"Content-Type": "application/xml"}, \
            b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
    return 429, {"Content-Type": "application/json", "x-amzn-ErrorType": "ThrottlingException"}, \
        json.dumps({"message": "Rate exceeded"}).encode()
lock = threading.Lock()
buckets = {}


def service_of(headers):
    """The service a call is signed for: Credential=KEY/DATE/REGION/SERVICE/aws4_request."""
    auth = headers.get("Authorization", "")
    try:
        return auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")[3]
    except IndexError:
        return "?"


def take_token(service):
    """One call's token from the service's bucket; False when it is empty."""
    now = time.time()
    tokens, last = buckets.get(service, (float(rate["burst"]), now))
    tokens = min(float(rate["burst"]), tokens + (now - last) * rate["per_second"])
    if tokens >= 1:
        buckets[service] = (tokens - 1, now)
        return True
    buckets[service] = (tokens, now)
    return False


def operation(headers, body):
    target = headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    try:
        return parse_qs(body.decode()).get("Action", [""])[0]
    except UnicodeDecodeError:
        return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle_any(self):
        started = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        op = operation(self.headers, body)
        if latency and not self.path.startswith("/moto-api"):
            time.sleep(latency)
        with lock:
            fault = next((f for f in faults if f["operation"] == op and f["times"] > 0), None)
            if fault:
                fault["times"] -= 1
                with open(log_path, "a") as f:
                    f.write(op + "\n")
        chosen = None
        if rate and not self.path.startswith("/moto-api"):
            service = service_of(self.headers)
            with lock:
                ok = take_token(service)
                with open(log_path, "a") as f:
                    f.write(("answered %s\n" % service) if ok else ("throttled %s %s\n" % (service, op or self.command)))
            if not ok:
                chosen = "throttle"
        if mixed and not self.path.startswith("/moto-api"):
            with lock:
                if rng.random() < mixed["rate"]:
                    chosen = rng.choice(MIXED)
                    with open(log_path, "a") as f:
                        f.write("%s %s\n" % (chosen, op or self.command))
        if chosen == "throttle":
            status, hdrs, payload = throttle_answer(self.headers, body)
            self.send_response(status)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        if chosen == "5xx":
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if chosen == "drop-before":
            self.close_connection = True
            return
        if chosen == "slow":
            time.sleep(0.3)
        if fault and fault.get("hold_until"):
            # held until the test says so (a file appears), then forwarded: a call in flight
            # for as long as the test needs, whatever the machine's load
            while not __import__("os").path.exists(fault["hold_until"]):
                time.sleep(0.02)
            fault = None
        if fault and fault.get("delay"):
            # a slow answer, not an error: hold the call, then forward it
            time.sleep(fault["delay"])
            fault = None
        if fault:
            if fault.get("protocol") == "query":
                payload = (
                    "<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error>"
                    "<RequestId>fault</RequestId></ErrorResponse>" % (fault["code"], fault["message"])
                ).encode()
                ctype = "text/xml"
            else:
                payload = json.dumps({"__type": fault["code"], "message": fault["message"]}).encode()
                ctype = "application/x-amz-json-1.0"
            self.send_response(fault.get("status", 400))
            self.send_header("Content-Type", ctype)
            self.send_header("x-amzn-ErrorType", fault["code"])
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        req = urllib.request.Request(
            "http://127.0.0.1:%d%s" % (upstream, self.path), data=body if body else None, method=self.command
        )
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length", "connection"):
                req.add_header(k, v)
        lost = chosen == "lost-after"
        if lose and not self.path.startswith("/moto-api"):
            with lock:
                lost = rng.random() < lose["rate"]
        try:
            resp = urllib.request.urlopen(req, timeout=60)
            status, headers, data = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, data = e.code, e.headers, e.read()
        if log_all and not self.path.startswith("/moto-api"):
            with lock:
                with open(log_path, "a") as f:
                    f.write("applied " + (op or self.command + " " + self.path.split("?")[0]) + "\n")
        if lost:
            with lock:
                with open(log_path, "a") as f:
                    f.write("lost " + (op or self.command + " " + self.path.split("?")[0]) + "\n")
            self.close_connection = True
            return
        if timeline and not self.path.startswith("/moto-api"):
            with lock:
                with open(log_path, "a") as f:
                    f.write("call %s %.4f %.4f %d %s\n" % (op or self.command, started, time.time(), len(body),
                                                            self.path.split("?")[0]))
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("content-length", "connection", "transfer-encoding", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_any


class Server(ThreadingHTTPServer):
    # a client with hundreds of calls in flight: the default backlog (5) drops their connects,
    # and a dropped SYN is retried by the kernel a second later (a stall that is the proxy's)
    request_queue_size = 1024
    daemon_threads = True


Server(("127.0.0.1", port), Handler).serve_forever()
