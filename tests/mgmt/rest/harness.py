# Test harness of the REST contract suite: starts egw-mgmt (and, when a case needs one,
# egw-dataplane on net_null vdevs) with unique names, and speaks HTTP over loopback with
# http.client only. Used by tests/mgmt/rest/run_rest_tests.py; stdlib only.
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for(pred, timeout, step=0.05):
    """Polls pred() until it returns a true value or timeout seconds pass; returns it."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


class Reply:
    """One HTTP answer: status, headers (lower-case names), raw body, parsed JSON."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body.decode('utf-8')) if body else None
        except (ValueError, UnicodeDecodeError):
            self.json = None

    def header(self, name):
        return self.headers.get(name.lower(), '')

    def error_code(self):
        e = self.json.get('error') if isinstance(self.json, dict) else None
        return e.get('code') if isinstance(e, dict) else None

    def error_paths(self):
        e = self.json.get('error') if isinstance(self.json, dict) else None
        if not isinstance(e, dict) or not isinstance(e.get('details'), list):
            return []
        return [d.get('path') for d in e['details'] if isinstance(d, dict)]

    def __repr__(self):
        return 'HTTP %d %s' % (self.status, self.body[:300].decode('utf-8', 'replace'))


def request(port, method, path, body=None, headers=None, tls_ctx=None, timeout=30,
            content_length=None):
    """One request on a fresh connection. body: bytes/str/None. content_length: send this
    Content-Length header instead of the body's own (the body is then not sent)."""
    if tls_ctx is not None:
        conn = http.client.HTTPSConnection('127.0.0.1', port, timeout=timeout, context=tls_ctx)
    else:
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    if isinstance(body, str):
        body = body.encode('utf-8')
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if content_length is not None:
            conn.putheader('Content-Length', str(content_length))
        elif body is not None or method in ('PUT', 'POST'):
            conn.putheader('Content-Length', str(len(body or b'')))
        conn.endheaders()
        if body and content_length is None:
            try:
                for i in range(0, len(body), 65536):
                    conn.send(body[i:i + 65536])
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered early (413) and closed: read that answer
        r = conn.getresponse()
        data = r.read()
        return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def try_request(port, method, path, **kw):
    """request(), or None when no HTTP answer came (not listening yet, reset)."""
    try:
        return request(port, method, path, **kw)
    except OSError:
        return None


class Mgmt:
    """An egw-mgmt process of this suite."""

    def __init__(self, build, instance, state_dir, tokens=None, max_body=None, extra=None,
                 env=None, port=None):
        self.build, self.instance, self.state_dir = build, instance, state_dir
        self.tokens, self.max_body, self.extra = tokens, max_body, list(extra or [])
        self.env = env
        self.port = port or free_port()
        self.proc = None
        self.log_path = os.path.join(state_dir + '.logs', 'mgmt-%d.log' % self.port)
        os.makedirs(os.path.dirname(self.log_path), exist_ok=True)

    def argv(self):
        a = [os.path.join(self.build, 'egw-mgmt'), '--instance', self.instance,
             '--listen', '127.0.0.1:%d' % self.port, '--state-dir', self.state_dir]
        if self.tokens:
            a += ['--tokens', self.tokens]
        if self.max_body:
            a += ['--max-body', str(self.max_body)]
        return a + self.extra

    def start(self, timeout=15):
        """Starts it and waits for its 'listening' line; False (and stopped) if it never came."""
        env = dict(os.environ)
        env.pop('EGW_MGMT_FAULT', None)
        env.update(self.env or {})
        self.log = open(self.log_path, 'ab')
        self.log_offset = self.log.tell()  # a restart appends: look past the old lines
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        ok = wait_for(lambda: self.proc.poll() is not None or self.listening(), timeout)
        if self.proc.poll() is not None or not ok:
            self.stop()
            return False
        return True

    def listening(self):
        try:
            with open(self.log_path, 'rb') as f:
                f.seek(self.log_offset)
                return b'egw-mgmt: listening on' in f.read()
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.log.close()
        return rc

    def output(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''


class Dataplane:
    """An egw-dataplane on two net_null ports (no network, no hugepages)."""

    def __init__(self, build, instance, prefix, workdir, policy=None):
        self.build, self.instance, self.prefix, self.policy = build, instance, prefix, policy
        self.out_path = os.path.join(workdir, 'dp-%s.out' % prefix)
        self.err_path = os.path.join(workdir, 'dp-%s.err' % prefix)
        self.proc = None

    def start(self, timeout=30):
        a = [os.path.join(self.build, 'egw-dataplane'), '-l', '0,1', '--no-huge', '--no-pci',
             '--no-shconf', '-m', '1024', '--file-prefix', self.prefix, '--log-level', '4',
             '--vdev=net_null0', '--vdev=net_null1', '--', '--instance', self.instance]
        if self.policy:
            a += ['--policy', self.policy]
        self.out = open(self.out_path, 'wb')
        self.err = open(self.err_path, 'wb')
        self.proc = subprocess.Popen(a, stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL)
        ok = wait_for(lambda: self.proc.poll() is not None or 'forwarding on' in self.stdout(),
                      timeout, 0.1)
        if self.proc.poll() is not None or not ok:
            self.stop()
            return False
        return True

    def stdout(self):
        try:
            with open(self.out_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        self.out.close()
        self.err.close()
        return rc


def make_tokens(path):
    """Writes a tokens file with an admin and a reader token; returns {role: (token, name)}."""
    toks = {'admin': (secrets.token_hex(24), 'rest-admin'),
            'reader': (secrets.token_hex(24), 'rest-reader')}
    with open(path, 'w') as f:
        f.write('# egw REST suite tokens\n')
        for role, (tok, name) in toks.items():
            f.write('%s %s %s\n' % (tok, role, name))
    os.chmod(path, 0o600)
    return toks


def self_signed(workdir):
    """A self-signed certificate for 127.0.0.1 made with openssl; (cert, key) or None."""
    cert, key = os.path.join(workdir, 'cert.pem'), os.path.join(workdir, 'key.pem')
    r = subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
                        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
                        '-keyout', key, '-out', cert], capture_output=True)
    return (cert, key) if r.returncode == 0 else None


def temp_dir(tag):
    return tempfile.mkdtemp(prefix='egw-rest-%s-%d.' % (tag, os.getpid()))
