#!/usr/bin/env python3
"""Forwarding figures: alerts/s delivered to syslog-ng over TLS (CEF, octet-counted) and to
medallion (TAXII 2.1, memory backend), and the latency from the triggering packet to delivery.

    CANH_BIN=/tmp/canh-release/release/canh python3 benches/forward.py [SYSLOG_ALERTS [TAXII_ALERTS [LATENCY_EVENTS]]]

Defaults: 100000 alerts to syslog-ng, 2000 to medallion (its memory backend scans the whole
collection for every object it adds, so it slows down as the collection grows), 300 events at
20/s for the latency. Each event is an sshd failure from its own address that the canary rule
turns into its own alert. The receivers are started by deploy/syslog-ng.sh and deploy/taxii.sh;
the TLS certificates are made with openssl. Prints one line per figure.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CANH = os.environ.get("CANH_BIN", os.path.join(ROOT, "target/release/canh"))
CANARY = """title: Forward canary
id: 0badc0de-0000-4000-8000-0000000000f1
status: test
logsource: {product: linux, service: sshd}
detection:
  keywords:
    - 'Failed password for canary'
  condition: keywords
level: high
tags: [attack.t1110]
"""
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def ip_of(i):
    return f"10.{60 + i // 62500}.{(i // 250) % 250}.{i % 250 + 1}"


def line(i):
    t = time.strftime("%b %d %H:%M:%S", time.gmtime())
    return f"<38>{t} bench sshd[42]: Failed password for canary from {ip_of(i)} port 50000 ssh2\n"


def certificates(d):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj",
        "/CN=bench CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
        "keyUsage=critical,keyCertSign,cRLSign")
    for name, ext in [("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")]:
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext)
        run("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext")


def deploy(script, d, env=None):
    out = subprocess.run(["bash", os.path.join(ROOT, "deploy", script), "start", d],
                         env={**os.environ, **(env or {})}, check=True, capture_output=True,
                         text=True)
    return out.stdout.split()


def undeploy(script, d):
    subprocess.run(["bash", os.path.join(ROOT, "deploy", script), "stop", d], capture_output=True)


class Canh:
    def __init__(self, work, forward):
        self.data = os.path.join(work, "data")
        rules = os.path.join(work, "rules")
        os.makedirs(rules, exist_ok=True)
        with open(os.path.join(rules, "canary.yml"), "w") as f:
            f.write(CANARY)
        self.tcp, self.http = free_port(), free_port()
        cfg = os.path.join(work, "canh.toml")
        with open(cfg, "w") as f:
            f.write(f'data_dir = "{self.data}"\n[http]\nlisten = "127.0.0.1:{self.http}"\n'
                    f'[[syslog.tcp]]\nname = "tcp"\nlisten = "127.0.0.1:{self.tcp}"\n'
                    f'[detection]\nrules = "{rules}"\n{forward}')
        self.log = open(os.path.join(work, "canh.log"), "w")
        self.proc = subprocess.Popen([CANH, "serve", "--config", cfg], stdout=self.log,
                                     stderr=self.log, stdin=subprocess.DEVNULL)
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", self.tcp), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("canh did not start")

    def metric(self, sample):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/metrics", timeout=10) as r:
            for l in r.read().decode().splitlines():
                if l.startswith(sample + " "):
                    return float(l.split()[-1])
        return 0.0

    def delivered(self, dest):
        return self.metric(f'canh_forward_alerts_total{{destination="{dest}",kind="delivered"}}')

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.log.close()


def throughput(canh, dest, n, peer_pid=None):
    """Sends n events at once; alerts/s from the first delivery to the last."""
    s = socket.create_connection(("127.0.0.1", canh.tcp))
    s.sendall("".join(line(i) for i in range(n)).encode())
    s.close()
    t_first = d_first = None
    deadline = time.time() + 1800
    c0, p0 = cpu_seconds(canh.proc.pid), peer_pid and cpu_seconds(peer_pid)
    while time.time() < deadline:
        d = canh.delivered(dest)
        now = time.time()
        if d > 0 and t_first is None:
            t_first, d_first = now, d
        if d >= n:
            break
        time.sleep(0.02)
    else:
        raise SystemExit(f"{dest}: only {canh.delivered(dest)} of {n} delivered")
    el = now - t_first
    c1 = cpu_seconds(canh.proc.pid)
    peer = f" peer_cpu_s={cpu_seconds(peer_pid) - p0:.1f}" if peer_pid else ""
    print(f"forward dest={dest} alerts={n} alerts_per_s={(n - d_first) / el:.0f} "
          f"elapsed_s={el:.2f} canh_cpu_s={c1 - c0:.1f}{peer}", flush=True)


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    n_syslog = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    n_taxii = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    n_lat = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    work = tempfile.mkdtemp(prefix="canh-forward-bench-")
    tls = os.path.join(work, "tls")
    os.makedirs(tls)
    certificates(tls)
    tls_opts = (f'ca_file = "{tls}/ca.crt"\nclient_cert = "{tls}/client.crt"\n'
                f'client_key = "{tls}/client.key"\n')
    try:
        # Throughput, one destination at a time.
        sng = os.path.join(work, "syslog-ng")
        port = deploy("syslog-ng.sh", sng, {"TLS_DIR": tls})[0]
        c = Canh(os.path.join(work, "a"), f'[[forward]]\nname = "syslog-tls"\n'
                 f'url = "syslog+tls://127.0.0.1:{port}"\nbatch = 500\n{tls_opts}')
        throughput(c, "syslog-tls", n_syslog, int(open(os.path.join(sng, "server.pid")).read()))
        c.stop()
        undeploy("syslog-ng.sh", sng)

        # The receiver's own ceiling, measured the same way: syslog-ng's loggen sending
        # 500-byte RFC 5424 messages, octet-counted over TLS, as fast as it can for 5 s.
        plain = os.path.join(work, "tls-server-only")
        os.makedirs(plain)
        for f in ("server.crt", "server.key"):
            shutil.copy(os.path.join(tls, f), plain)
        peer = os.path.join(work, "syslog-ng-loggen")
        port = deploy("syslog-ng.sh", peer, {"TLS_DIR": plain})[0]
        t0 = time.time()
        out = subprocess.run(["loggen", "--use-ssl", "-P", "-r", "10000000", "-I", "5",
                              "-s", "500", "127.0.0.1", port], capture_output=True, text=True)
        log = os.path.join(peer, "messages.log")
        last, n = -1, 0
        while True:
            n = sum(1 for _ in open(log)) if os.path.exists(log) else 0
            if n == last:
                break
            last = n
            time.sleep(1)
        el = time.time() - t0 - 1
        print(f"peer loggen->syslog-ng tls messages={n} msgs_per_s={n / el:.0f} "
              f"({out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''})", flush=True)
        undeploy("syslog-ng.sh", peer)

        tx = os.path.join(work, "taxii")
        port, coll = deploy("taxii.sh", tx)
        c = Canh(os.path.join(work, "b"), f'[[forward]]\nname = "taxii"\nurl = '
                 f'"taxii+http://canh:canh-secret@127.0.0.1:{port}/api1/collections/{coll}/"\n')
        throughput(c, "taxii", n_taxii, int(open(os.path.join(tx, "server.pid")).read()))
        c.stop()
        undeploy("taxii.sh", tx)

        # Latency: events one by one, both destinations fresh.
        shutil.rmtree(sng)
        port = deploy("syslog-ng.sh", sng, {"TLS_DIR": tls})[0]
        tport, coll = deploy("taxii.sh", tx)
        c = Canh(os.path.join(work, "c"),
                 f'[[forward]]\nname = "syslog-tls"\nurl = "syslog+tls://127.0.0.1:{port}"\n'
                 f'{tls_opts}[[forward]]\nname = "taxii"\nurl = '
                 f'"taxii+http://canh:canh-secret@127.0.0.1:{tport}/api1/collections/{coll}/"\n')
        sent = {}
        s = socket.create_connection(("127.0.0.1", c.tcp))
        base = 100000
        for i in range(n_lat):
            sent[ip_of(base + i)] = time.time()
            s.sendall(line(base + i).encode())
            time.sleep(0.05)
        s.close()
        while min(c.delivered("syslog-tls"), c.delivered("taxii")) < n_lat:
            time.sleep(0.1)
        c.stop()
        lat = []
        for l in open(os.path.join(sng, "messages.log")):
            recv = float(l.split(" ", 1)[0])
            ip = l.split(" src=", 1)[1].split(" ", 1)[0]
            lat.append(recv - sent[ip])
        print(f"latency dest=syslog-tls events={len(lat)} p50_ms={percentile(lat, 50) * 1000:.0f} "
              f"p99_ms={percentile(lat, 99) * 1000:.0f} max_ms={max(lat) * 1000:.0f}", flush=True)
        def get(path):
            req = urllib.request.Request(
                f"http://127.0.0.1:{tport}/api1/collections/{coll}/{path}",
                headers={"Accept": "application/taxii+json;version=2.1",
                         "Authorization": "Basic Y2FuaDpjYW5oLXNlY3JldA=="})
            with urllib.request.urlopen(req, timeout=60) as r:
                return json.loads(r.read())
        objs = {o["id"]: o for o in get("objects/").get("objects", [])}
        added = {m["id"]: m["date_added"] for m in get("manifest/").get("objects", [])}
        lat = []
        for o in objs.values():
            if o["type"] != "sighting":
                continue
            od = objs[o["observed_data_refs"][0]]
            ip = next(objs[r]["value"] for r in od["object_refs"] if r.startswith("ipv4-addr"))
            t = added[o["id"]].replace("Z", "+00:00")
            import datetime
            recv = datetime.datetime.fromisoformat(t).timestamp()
            lat.append(recv - sent[ip])
        print(f"latency dest=taxii events={len(lat)} p50_ms={percentile(lat, 50) * 1000:.0f} "
              f"p99_ms={percentile(lat, 99) * 1000:.0f} max_ms={max(lat) * 1000:.0f}", flush=True)
    finally:
        undeploy("syslog-ng.sh", os.path.join(work, "syslog-ng"))
        undeploy("taxii.sh", os.path.join(work, "taxii"))
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
