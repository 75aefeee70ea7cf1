#!/usr/bin/python3
# Traffic and REST helpers of the e2e swap, fault and restart tests (stdlib only):
#   udp-send  a paced UDP stream with sequence numbers, logs what it sent and when
#   udp-recv  counts the stream's packets per source port until SIGTERM
#   http-stream  an HTTP server sending random bytes at a fixed rate until told to stop
#   rest      one REST call (prints the status and body; exit 0 on 2xx)
#   apply-loop / apply-one  PUT policy versions and record activation_ms and timing
import argparse
import hashlib
import http.client
import json
import os
import signal
import socket
import struct
import sys
import time

MAGIC = b'EGWS'


def udp_send(a):
    """Sends a.rate packets/s from a.sport for a.duration s, or until the file a.stop_file
    exists (checked every 100 packets); writes {sent, times_ns}."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('', a.sport))
    pad = b'\0' * max(0, a.size - 12)
    period = 1.0 / a.rate
    n = int(a.rate * a.duration)
    times = []
    t0 = time.monotonic()
    for seq in range(n):
        if a.stop_file and seq % 100 == 0 and os.path.exists(a.stop_file):
            n = seq
            break
        due = t0 + seq * period
        while True:
            now = time.monotonic()
            if now >= due:
                break
            if due - now > 0.002:
                time.sleep(due - now - 0.001)
        times.append(time.monotonic_ns())
        s.sendto(MAGIC + struct.pack('!II', a.sport, seq) + pad, (a.dst, a.port))
    with open(a.out, 'w') as f:
        json.dump({'sport': a.sport, 'sent': n, 'times_ns': times,
                   'seconds': time.monotonic() - t0}, f)


def udp_recv(a):
    """Counts packets per source port and sequence until SIGTERM; writes the result."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((a.bind, a.port))
    s.settimeout(0.2)
    seen = {}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(a.out + '.ready', 'w') as f:
        f.write('ready\n')
    while not stop:
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        except InterruptedError:
            continue
        if len(data) < 12 or data[:4] != MAGIC:
            continue
        sport, seq = struct.unpack('!II', data[4:12])
        seen.setdefault(sport, []).append(seq)
    res = {}
    for sport, seqs in seen.items():
        res[str(sport)] = {'received': len(seqs), 'unique': len(set(seqs)),
                           'max_seq': max(seqs), 'seqs': sorted(set(seqs))}
    with open(a.out, 'w') as f:
        json.dump(res, f)


def http_stream(a):
    """A one-request-at-a-time HTTP/1.0 server whose every answer is random bytes at
    a.rate bytes/s until the file a.stop_file exists; then it closes the connection and
    appends {bytes, sha256} of that answer to a.out (one JSON line per answer)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((a.bind, a.port))
    srv.listen(4)
    chunk = 8192
    while True:
        conn, _ = srv.accept()
        with conn:
            req = b''
            while b'\r\n\r\n' not in req and len(req) < 65536:
                data = conn.recv(4096)
                if not data:
                    break
                req += data
            conn.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\n'
                         b'Connection: close\r\n\r\n')
            h = hashlib.sha256()
            total = 0
            t0 = time.monotonic()
            while not os.path.exists(a.stop_file):
                due = t0 + total / a.rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                block = os.urandom(chunk)
                conn.sendall(block)
                h.update(block)
                total += len(block)
            conn.shutdown(socket.SHUT_WR)
        with open(a.out, 'a') as f:
            f.write(json.dumps({'bytes': total, 'sha256': h.hexdigest()}) + '\n')


def call(url, token, method, path, body=None, headers=None, timeout=30):
    """One REST call; returns (status, parsed body or raw text)."""
    host, port = url.split('://', 1)[1].rstrip('/').rsplit(':', 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    h = dict(headers or {})
    if token:
        h['Authorization'] = 'Bearer ' + token
    try:
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        data = r.read().decode('utf-8', 'replace')
    finally:
        conn.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def read_token(path):
    with open(path) as f:
        return f.read().split()[0]


def rest(a):
    body = open(a.body, 'rb').read() if a.body else None
    status, out = call(a.url, read_token(a.token_file) if a.token_file else None, a.method,
                       a.path, body)
    print(status)
    print(json.dumps(out) if not isinstance(out, str) else out)
    return 0 if 200 <= status < 300 else 1


def with_extra_rule(doc, i):
    """doc plus one harmless rule (another port, another network): version i differs."""
    d = json.loads(json.dumps(doc))
    d['rulesets'].append({'name': 'swap-%d' % i, 'rules': [
        {'id': 'swap-%d' % i, 'from': ['any'], 'proto': 'tcp', 'ports': [20000 + i],
         'to': {'cidrs': ['198.19.99.0/24']}, 'action': 'allow'}]})
    return d


def alive(pid):
    """True while process pid exists (and is not a zombie)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def apply_loop(a):
    """PUTs a.count versions a.interval s apart; writes [{version, activation_ms, ...}]."""
    token = read_token(a.token_file)
    base = json.load(open(a.base))
    out = []
    for i in range(a.count):
        t0 = time.monotonic_ns()
        status, r = call(a.url, token, 'PUT', '/v1/policy', json.dumps(with_extra_rule(base, i)),
                         {'X-Egw-Comment': 'swap test %d' % i})
        t1 = time.monotonic_ns()
        ok = status == 200 and isinstance(r, dict) and r.get('active') is True
        watched = alive(a.watch_pid) if a.watch_pid else None
        out.append({'i': i, 'status': status, 'ok': ok,
                    'version': r.get('version') if isinstance(r, dict) else None,
                    'activation_ms': r.get('activation_ms') if isinstance(r, dict) else None,
                    'rest_ms': (t1 - t0) / 1e6, 't_req_ns': t0, 't_ack_ns': t1,
                    'watched_alive': watched,
                    'error': None if ok else r})
        time.sleep(a.interval)
    with open(a.out, 'w') as f:
        json.dump(out, f)
    return 0 if all(x['ok'] for x in out) else 1


def apply_one(a):
    """PUTs one document; writes {status, body, t_req_ns, t_ack_ns}."""
    token = read_token(a.token_file)
    doc = open(a.doc, 'rb').read()
    t0 = time.monotonic_ns()
    status, r = call(a.url, token, 'PUT', '/v1/policy', doc)
    t1 = time.monotonic_ns()
    with open(a.out, 'w') as f:
        json.dump({'status': status, 'body': r, 't_req_ns': t0, 't_ack_ns': t1}, f)
    return 0 if status == 200 else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('udp-send')
    p.add_argument('--dst', required=True)
    p.add_argument('--port', type=int, default=7)
    p.add_argument('--sport', type=int, required=True)
    p.add_argument('--rate', type=float, default=2000)
    p.add_argument('--duration', type=float, default=10)
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--stop-file')
    p.add_argument('--out', required=True)
    p = sub.add_parser('udp-recv')
    p.add_argument('--bind', required=True)
    p.add_argument('--port', type=int, default=7)
    p.add_argument('--out', required=True)
    p = sub.add_parser('http-stream')
    p.add_argument('--bind', required=True)
    p.add_argument('--port', type=int, default=80)
    p.add_argument('--rate', type=float, default=256 * 1024)
    p.add_argument('--stop-file', required=True)
    p.add_argument('--out', required=True)
    p = sub.add_parser('rest')
    p.add_argument('--url', required=True)
    p.add_argument('--token-file')
    p.add_argument('method')
    p.add_argument('path')
    p.add_argument('body', nargs='?')
    p = sub.add_parser('apply-loop')
    for k in ('--url', '--token-file', '--base', '--out'):
        p.add_argument(k, required=True)
    p.add_argument('--count', type=int, default=60)
    p.add_argument('--interval', type=float, default=0.2)
    p.add_argument('--watch-pid', type=int, help='record whether this process still runs')
    p = sub.add_parser('apply-one')
    for k in ('--url', '--token-file', '--doc', '--out'):
        p.add_argument(k, required=True)
    a = ap.parse_args()
    fn = {'udp-send': udp_send, 'udp-recv': udp_recv, 'http-stream': http_stream, 'rest': rest,
          'apply-loop': apply_loop, 'apply-one': apply_one}[a.cmd]
    return fn(a) or 0


if __name__ == '__main__':
    sys.exit(main())
