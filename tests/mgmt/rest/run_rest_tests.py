#!/usr/bin/python3
# The REST contract suite: real HTTP on loopback against a real egw-mgmt (and an
# egw-dataplane on net_null vdevs where activation matters). A table of cases, in order;
# after every failed call nothing changed, and every mutation left one audit line.
# Usage: /usr/bin/python3 tests/mgmt/rest/run_rest_tests.py [--build build]
import argparse
import copy
import hashlib
import json
import os
import re
import shutil
import signal
import ssl
import stat
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness as H  # noqa: E402

MAX_BODY = 65536
AUDIT_FIELDS = ('time', 'token', 'remote', 'method', 'path', 'status', 'sha256_before',
                'sha256_after', 'version')


def policy(extra_port=None, udp=True):
    """A valid L3/L4 policy; extra_port adds a harmless rule, so versions differ."""
    rules = [{'id': 'http', 'from': ['web'], 'proto': 'tcp', 'ports': [80],
              'to': {'cidrs': ['198.19.1.0/24']}, 'action': 'allow'}]
    if udp:
        rules.append({'id': 'udp-echo', 'from': ['web'], 'proto': 'udp', 'ports': [7],
                      'to': {'cidrs': ['198.19.1.10/32']}, 'action': 'allow'})
    if extra_port is not None:
        rules.append({'id': 'extra-%d' % extra_port, 'from': ['any'], 'proto': 'tcp',
                      'ports': [extra_port], 'to': {'cidrs': ['198.19.3.0/24']},
                      'action': 'allow'})
    return {'schema': 1, 'default_action': 'deny',
            'services': {'web': {'cidrs': ['198.18.1.0/24']}},
            'rulesets': [{'name': 'base', 'rules': rules}]}


def dumps(doc):
    return json.dumps(doc, indent=1)


def names_policy():
    """A valid policy with name conditions: 2 domains and 1 domain_regex in 2 rules."""
    d = policy(udp=False)
    d['rulesets'][0]['rules'].append(
        {'id': 'names', 'from': ['web'], 'proto': 'tcp', 'ports': [443],
         'to': {'domains': ['api.example.com', '*.ok.example'],
                'domain_regex': ['^a[0-9]+\\.example\\.org$']}, 'action': 'allow'})
    return d


def inspect_policy():
    """The names policy with one inspect rule of 2 patterns."""
    d = names_policy()
    d['inspect'] = [{'id': 'no-aws-keys', 'from': ['any'],
                     'patterns': ['AKIA[0-9A-Z]{16}', 'secret=[a-z]{8}'], 'action': 'reject'}]
    return d


STATS_KEYS = ('services', 'service_cidrs', 'rulesets', 'rules', 'domains', 'regexes',
              'inspect_rules', 'inspect_patterns', 'rate_limited_rules', 'max_flows_rules',
              'report_rules', 'compiled_bytes')


def stats_are(**want):
    """A check: the answer's "stats" has every key, these values and a blob size."""
    def chk(ctx, r):
        st = r.json.get('stats') if isinstance(r.json, dict) else None
        if not isinstance(st, dict) or sorted(st) != sorted(STATS_KEYS):
            return 'stats %r, want the keys %s' % (st, ', '.join(STATS_KEYS))
        bad = {k: st[k] for k, v in want.items() if st[k] != v}
        if bad or not isinstance(st['compiled_bytes'], int) or st['compiled_bytes'] < 72:
            return 'stats %r, want %r' % (st, want)
        return None
    return chk


def bad_rule(**changes):
    """The base policy with its first rule changed (None deletes a key)."""
    d = policy()
    r = d['rulesets'][0]['rules'][0]
    for k, v in changes.items():
        if v is None:
            r.pop(k, None)
        else:
            r[k] = v
    return dumps(d)


# Invalid documents: description, body (bytes or str), the detail paths that must be named.
INVALID = [
    ('unknown field in a rule', bad_rule(bogus=1), ['/rulesets/0/rules/0/bogus']),
    ('port out of range', bad_rule(ports=[70000]), ['/rulesets/0/rules/0/ports/0']),
    ('bad CIDR', bad_rule(to={'cidrs': ['198.19.1.0/33']}), ['/rulesets/0/rules/0/to/cidrs/0']),
    ('unknown action', bad_rule(action='permit'), ['/rulesets/0/rules/0/action']),
    ('unknown service in from', bad_rule(**{'from': ['nosuch']}), ['/rulesets/0/rules/0/from/0']),
    ('regex metacharacters in a domains literal',
     bad_rule(to={'domains': ['a.b(c|d).com']}), ['/rulesets/0/rules/0/to/domains/0']),
    ('two errors: both reported', bad_rule(bogus=1, ports=[70000]),
     ['/rulesets/0/rules/0/bogus', '/rulesets/0/rules/0/ports/0']),
    ('schema 2', dumps(dict(policy(), schema=2)), ['/schema']),
    ('unknown top-level field', dumps(dict(policy(), colour='red')), ['/colour']),
    ('inspect rule with action allow',
     dumps(dict(policy(), inspect=[{'id': 'k', 'from': ['any'], 'patterns': ['AKIA'],
                                    'action': 'allow'}])), ['/inspect/0/action']),
    ('inspect pattern matching the empty string',
     dumps(dict(policy(), inspect=[{'id': 'k', 'from': ['any'], 'patterns': ['AKIA', 'x*'],
                                    'action': 'deny'}])), ['/inspect/0/patterns/1']),
]
# Bodies that are not a JSON document at all: description, body, a message fragment.
MALFORMED = [
    ('duplicate JSON keys', '{"schema":1,"default_action":"deny","default_action":"allow",'
     '"rulesets":[]}', 'default_action'),
    ('duplicate keys inside a rule', bad_rule().replace('"id": "http"', '"id": "http", "id": "x"'),
     "'id'"),
    ('malformed JSON (truncated)', dumps(policy())[:40], ''),
    ('bad UTF-8 in a string', dumps(policy()).encode('utf-8').replace(b'"base"', b'"ba\xffse"'), ''),
    ('nesting 300 levels deep', '{"schema":1,"x":' + '[' * 300 + ']' * 300 + '}', ''),
    ('a JSON array, not an object', '[1,2,3]', ''),
    ('empty body', '', ''),
    ('trailing garbage after the object', dumps(policy()) + ' {}', ''),
]


class Ctx:
    """What the cases share: the processes, tokens and documents committed so far."""

    def __init__(self, build):
        self.build = build
        self.work = H.temp_dir('w')
        self.state = os.path.join(self.work, 'state')
        os.makedirs(self.state)
        self.instance = 'rest%d' % os.getpid()
        self.tokens_file = os.path.join(self.work, 'tokens')
        self.toks = H.make_tokens(self.tokens_file)
        self.mgmt = H.Mgmt(build, self.instance, self.state, tokens=self.tokens_file,
                           max_body=MAX_BODY)
        self.dp = None
        self.docs = {}  # version -> document (parsed) committed by this suite
        self.others = []  # extra processes of single cases, stopped at the end

    def auth(self, who):
        if who is None:
            return {}
        if who == 'bad':
            return {'Authorization': 'Bearer ' + 'f' * 48}
        if who in self.toks:
            return {'Authorization': 'Bearer ' + self.toks[who][0]}
        return {'Authorization': who}  # a raw header value

    def call(self, method, path, body=None, who='admin', headers=None, **kw):
        h = self.auth(who)
        h.update(headers or {})
        return H.request(self.mgmt.port, method, path, body, h, **kw)

    def snapshot(self):
        """What a failed call must leave unchanged: the policy, its ETag, the history."""
        p = self.call('GET', '/v1/policy')
        hist = self.call('GET', '/v1/policy/history')
        return (p.status, p.body, p.header('etag'), hist.status,
                len(hist.json) if isinstance(hist.json, list) else -1)

    def audit_lines(self):
        try:
            with open(os.path.join(self.state, 'audit.jsonl'), 'rb') as f:
                return [l for l in f.read().split(b'\n') if l.strip()]
        except OSError:
            return []

    def current(self):
        h = self.call('GET', '/v1/health', who=None)
        return h.json.get('policy_version') if isinstance(h.json, dict) else None

    def close(self):
        for p in self.others:
            p.stop()
        if self.dp:
            self.dp.stop()
        self.mgmt.stop()
        for name in os.listdir('/dev/shm'):
            if name.startswith('egw-%s-' % self.instance):
                os.unlink(os.path.join('/dev/shm', name))


def health_is(r, dataplane, version):
    """The contract's health fields have these values (extra fields are allowed)."""
    want = {'status': 'ok', 'dataplane': dataplane, 'policy_version': version}
    return r.status == 200 and isinstance(r.json, dict) and all(
        r.json.get(k) == v for k, v in want.items())


def check_error_shape(r):
    """None if r carries the contract's error body, else what is wrong."""
    e = r.json.get('error') if isinstance(r.json, dict) else None
    if not isinstance(e, dict):
        return 'no {"error":{...}} body: %r' % r
    if not isinstance(e.get('code'), str) or not isinstance(e.get('message'), str):
        return 'error without code/message: %r' % r
    if 'details' in e and not isinstance(e['details'], list):
        return 'error.details is not a list'
    return None


# ------------------------------------------------------------------- the HTTP cases
# A row: description, method, path, body, token ('admin'|'reader'|None|'bad'|raw header),
# extra headers, expected status, kind, check(ctx, reply) -> error or None.
# kind: 'read' (no state change expected, no audit), 'fail' (a refused mutation: nothing
# changed, one audit line), 'commit' (a mutation that commits: one audit line).
def http_cases():
    C = []

    def add(desc, method, path, body=None, who='admin', headers=None, status=200, kind='read',
            check=None, **kw):
        C.append(dict(desc=desc, method=method, path=path, body=body, who=who,
                      headers=headers or {}, status=status, kind=kind, check=check, kw=kw))

    def err_code(code):
        return lambda ctx, r: None if r.error_code() == code else 'code %r, want %r' % (
            r.error_code(), code)

    def paths(want, suffix=False):
        def chk(ctx, r):
            got = r.error_paths()
            miss = [p for p in want if not any((g or '').endswith(p) if suffix else g == p
                                               for g in got)]
            return 'details paths %r miss %r' % (got, miss) if miss else None
        return chk

    def message_has(frag):
        def chk(ctx, r):
            e = r.json['error']
            text = e.get('message', '') + ' '.join(
                (d.get('path') or '') + ' ' + (d.get('message') or '') for d in e.get('details', []))
            return None if frag in text else 'error does not mention %r: %s' % (frag, text[:200])
        return chk

    # Nothing committed, no dataplane.
    add('health without a token: ok, disconnected, version 0', 'GET', '/v1/health', who=None,
        check=lambda c, r: None if health_is(r, 'disconnected', 0) else repr(r))
    add('GET /v1/policy before any commit: 404', 'GET', '/v1/policy', status=404)
    add('history before any commit: []', 'GET', '/v1/policy/history',
        check=lambda c, r: None if r.json == [] else repr(r))
    add('stats with no dataplane connected: 503', 'GET', '/v1/stats', status=503)
    add('GET /v1/policy without a token: 401', 'GET', '/v1/policy', who=None, status=401)
    add('GET /v1/policy with an unknown token: 401', 'GET', '/v1/policy', who='bad', status=401)
    add('Basic instead of Bearer: 401', 'GET', '/v1/policy/history', who='Basic YWRtaW46YWRtaW4=',
        status=401)
    add('Bearer with an empty token: 401', 'GET', '/v1/policy/history', who='Bearer ', status=401)
    add('a token with one character changed: 401', 'GET', '/v1/stats', status=401,
        who='TWEAKED')
    add('/metrics without a token: 401', 'GET', '/metrics', who=None, status=401)
    add('unknown endpoint with a token: 404 JSON error', 'GET', '/v1/nosuch', status=404)
    add('unknown endpoint without a token: 401', 'GET', '/v1/nosuch', who=None, status=401)
    add('validate a valid policy (reader may): valid, stats', 'POST', '/v1/policy/validate',
        dumps(policy()), who='reader',
        check=lambda c, r: (None if r.json.get('valid') is True else repr(r)) or stats_are(
            services=1, service_cidrs=1, rulesets=1, rules=2, domains=0, regexes=0,
            inspect_rules=0, inspect_patterns=0)(c, r))
    add('validate a policy with names: stats count domains and regexes', 'POST',
        '/v1/policy/validate', dumps(names_policy()), who='reader',
        check=stats_are(services=1, rulesets=1, rules=2, domains=2, regexes=1))
    add('validate a policy with inspect: stats count inspect rules and patterns', 'POST',
        '/v1/policy/validate', dumps(inspect_policy()), who='reader',
        check=stats_are(rules=2, domains=2, regexes=1, inspect_rules=1, inspect_patterns=2))
    for desc, body, want in INVALID:
        add('validate: %s: 400 naming %s' % (desc, ', '.join(want)), 'POST', '/v1/policy/validate',
            body, status=400, check=paths(want))
    # Refused mutations before the first commit.
    doc1 = dumps(policy())
    add('PUT without a token: 401', 'PUT', '/v1/policy', doc1, who=None, status=401, kind='fail')
    add('PUT with an unknown token: 401', 'PUT', '/v1/policy', doc1, who='bad', status=401,
        kind='fail')
    add('PUT with a reader token: 403', 'PUT', '/v1/policy', doc1, who='reader', status=403,
        kind='fail')
    for desc, body, want in INVALID:
        add('PUT %s: 400 naming %s' % (desc, ', '.join(want)), 'PUT', '/v1/policy', body,
            status=400, kind='fail', check=paths(want))
    for desc, body, frag in MALFORMED:
        add('PUT %s: 400' % desc, 'PUT', '/v1/policy', body, status=400, kind='fail',
            check=message_has(frag) if frag else None)
    add('PUT a valid policy padded past --max-body: 413', 'PUT', '/v1/policy',
        doc1 + ' ' * (MAX_BODY + 10), status=413, kind='fail')
    add('PUT announcing a 1 GB Content-Length: 413', 'PUT', '/v1/policy', None, status=413,
        kind='fail', content_length=1 << 30)
    add('rollback with nothing committed: 404', 'POST', '/v1/policy/rollback', '{"version":1}',
        status=404, kind='fail')
    # First commits (no dataplane: active false).
    add('PUT v1 without a dataplane: version 1, active false, stats', 'PUT', '/v1/policy', doc1,
        headers={'X-Egw-Comment': 'first'}, kind='commit', version=1,
        check=lambda c, r: (None if r.json.get('version') == 1 and r.json.get('active') is False
                            else repr(r)) or stats_are(rules=2, domains=0, regexes=0)(c, r))
    add('GET /v1/policy: the document and ETag "1"', 'GET', '/v1/policy', who='reader',
        check=lambda c, r: None if r.json == policy() and r.header('etag') == '"1"' else
        'etag %r body %r' % (r.header('etag'), r.body[:100]))
    add('PUT with If-Match "7" (stale): 412', 'PUT', '/v1/policy', dumps(policy(1001)),
        headers={'If-Match': '"7"'}, status=412, kind='fail')
    add('PUT with a malformed If-Match: 400 or 412', 'PUT', '/v1/policy', dumps(policy(1001)),
        headers={'If-Match': 'seven'}, status=(400, 412), kind='fail')
    add('PUT with If-Match "1": version 2', 'PUT', '/v1/policy', dumps(policy(1002)),
        headers={'If-Match': '"1"'}, kind='commit', version=2,
        check=lambda c, r: None if r.json.get('version') == 2 else repr(r))
    add('history: versions 1, 2 with sha256, author, time, comment', 'GET', '/v1/policy/history',
        who='reader', check=check_history)
    add('POST /v1/policy/rollback by a reader: 403', 'POST', '/v1/policy/rollback',
        '{"version":1}', who='reader', status=403, kind='fail')
    add('rollback to an unknown version: 404', 'POST', '/v1/policy/rollback', '{"version":999}',
        status=404, kind='fail')
    add('rollback with a string version: 400', 'POST', '/v1/policy/rollback', '{"version":"1"}',
        status=400, kind='fail')
    add('rollback with an unknown field: 400', 'POST', '/v1/policy/rollback',
        '{"version":1,"force":true}', status=400, kind='fail')
    add('rollback with malformed JSON: 400', 'POST', '/v1/policy/rollback', '{"version":',
        status=400, kind='fail')
    add('rollback to 1: version 3 equals version 1', 'POST', '/v1/policy/rollback',
        '{"version":1}', kind='commit', version=3, check=check_rollback)
    # Rulesets.
    add('GET /v1/rulesets/base: its rules', 'GET', '/v1/rulesets/base', who='reader',
        check=lambda c, r: None if isinstance(r.json, dict) and r.json.get('rules') ==
        policy()['rulesets'][0]['rules'] else repr(r))
    add('GET an unknown ruleset: 404', 'GET', '/v1/rulesets/nosuch', status=404)
    extra = {'rules': [{'id': 'dns', 'from': ['any'], 'proto': 'udp', 'ports': [53],
                        'to': {'cidrs': ['198.19.0.53/32']}, 'action': 'allow'}]}
    add('PUT /v1/rulesets/extra by a reader: 403', 'PUT', '/v1/rulesets/extra', json.dumps(extra),
        who='reader', status=403, kind='fail')
    add('PUT a ruleset whose name differs from the URL: 400 at /name', 'PUT', '/v1/rulesets/extra',
        json.dumps(dict(extra, name='other')), status=400, kind='fail', check=paths(['/name'], True))
    bad = copy.deepcopy(extra)
    bad['rules'][0]['ports'] = [70000]
    add('PUT a ruleset with a bad port: 400 naming .../rules/0/ports/0', 'PUT',
        '/v1/rulesets/extra', json.dumps(bad), status=400, kind='fail',
        check=paths(['/rules/0/ports/0'], True))
    add('PUT a ruleset with duplicate keys: 400', 'PUT', '/v1/rulesets/extra',
        '{"rules":[],"rules":[]}', status=400, kind='fail')
    report = copy.deepcopy(extra)
    report['mode'] = 'report'
    report['rules'][0]['rate_limit'] = {'new_flows_per_s': 10}
    add('PUT a report ruleset with a rate_limit: its mode is read, 400 at .../rate_limit', 'PUT',
        '/v1/rulesets/extra', json.dumps(report), status=400, kind='fail',
        check=paths(['/rules/0/rate_limit'], True))
    add('PUT a new ruleset: appended after the existing ones', 'PUT', '/v1/rulesets/extra',
        json.dumps(extra), kind='commit', version=4, check=check_appended(extra))
    add('PUT /v1/rulesets/extra with If-Match "2" (stale): 412', 'PUT', '/v1/rulesets/extra',
        json.dumps(extra), headers={'If-Match': '"2"'}, status=412, kind='fail')
    add('DELETE an unknown ruleset: 404', 'DELETE', '/v1/rulesets/nosuch', status=404, kind='fail')
    add('DELETE /v1/rulesets/extra by a reader: 403', 'DELETE', '/v1/rulesets/extra',
        who='reader', status=403, kind='fail')
    add('DELETE /v1/rulesets/extra: version 5 without it', 'DELETE', '/v1/rulesets/extra',
        kind='commit', version=5,
        check=lambda c, r: None if c.call('GET', '/v1/policy').json == policy() else
        'the policy still differs from v1')
    add('GET /v1/flows with no dataplane: 503 (501 before flow snapshots)', 'GET',
        '/v1/flows?limit=10', status=(503, 501))
    add('GET /v1/flows without a token: 401', 'GET', '/v1/flows', who=None, status=401)
    add('/metrics with a reader token: Prometheus text', 'GET', '/metrics', who='reader',
        check=lambda c, r: None if re.search(rb'^egw_policy_version(\{[^}]*\})? 5\b', r.body, re.M)
        else 'no "egw_policy_version 5" line: %r' % r.body[:300])
    return C


def check_history(ctx, r):
    if not isinstance(r.json, list) or [e.get('version') for e in r.json] != [1, 2]:
        return 'versions %r' % r.json
    for e in r.json:
        for k in ('version', 'sha256', 'created_at', 'author', 'comment'):
            if k not in e:
                return 'entry without %s: %r' % (k, e)
        if not re.fullmatch(r'[0-9a-f]{64}', e['sha256']):
            return 'sha256 %r' % e['sha256']
        if not re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z', e['created_at']):
            return 'created_at %r' % e['created_at']
        if e['author'] != 'rest-admin':
            return 'author %r, want the token name rest-admin' % e['author']
    if r.json[0]['comment'] != 'first':
        return 'comment of v1 %r, want "first" (X-Egw-Comment)' % r.json[0]['comment']
    if r.json[0]['sha256'] == r.json[1]['sha256']:
        return 'two different documents with one sha256'
    return None


def check_rollback(ctx, r):
    if r.json.get('version') != 3:
        return repr(r)
    p = ctx.call('GET', '/v1/policy')
    if p.json != policy() or p.header('etag') != '"3"':
        return 'after rollback: etag %r, document differs from v1' % p.header('etag')
    h = ctx.call('GET', '/v1/policy/history').json
    if h[2]['sha256'] != h[0]['sha256']:
        return 'v3 sha256 differs from v1'
    return None


def check_appended(extra):
    def chk(ctx, r):
        doc = ctx.call('GET', '/v1/policy').json
        names = [rs.get('name') for rs in doc.get('rulesets', [])]
        if names != ['base', 'extra'] or doc['rulesets'][1]['rules'] != extra['rules']:
            return 'rulesets %r' % names
        return None
    return chk


def run_http_case(ctx, c):
    """Runs one row; returns None or what went wrong."""
    before = ctx.snapshot() if c['kind'] != 'read' or c['status'] != 200 else None
    audit0 = len(ctx.audit_lines())
    who = c['who']
    if who == 'TWEAKED':
        t = ctx.toks['admin'][0]
        who = 'Bearer ' + t[:-1] + ('0' if t[-1] != '0' else '1')
    r = ctx.call(c['method'], c['path'], c['body'], who=who, headers=c['headers'],
                 **{k: v for k, v in c['kw'].items() if k == 'content_length'})
    want = c['status'] if isinstance(c['status'], tuple) else (c['status'],)
    if r.status not in want:
        return 'HTTP %d, want %s: %r' % (r.status, '/'.join(map(str, want)), r)
    if r.status >= 400:
        bad = check_error_shape(r)
        if bad:
            return bad
    if c['check']:
        bad = c['check'](ctx, r)
        if bad:
            return bad
    if before is not None and c['kind'] in ('fail', 'read'):
        after = ctx.snapshot()
        if after != before:
            return 'a failed call changed state: %r -> %r' % (before[:3], after[:3])
    if c['kind'] in ('fail', 'commit'):
        return check_audit(ctx, audit0, c, r, who)
    return None


def check_audit(ctx, n0, c, r, who):
    """One new audit line for this mutation, with the contract's fields."""
    lines = H.wait_for(lambda: ctx.audit_lines()[n0:] or None, 2)
    if not lines or len(lines) != 1:
        return '%d new audit lines, want 1' % (len(lines) if lines else 0)
    try:
        a = json.loads(lines[0])
    except ValueError:
        return 'audit line is not JSON: %r' % lines[0][:200]
    miss = [k for k in AUDIT_FIELDS if k not in a]
    if miss:
        return 'audit line without %s: %r' % (miss, a)
    want_token = {'admin': 'rest-admin', 'reader': 'rest-reader'}.get(c['who'])
    path = c['path'].split('?')[0]
    if a['method'] != c['method'] or a['path'] != path or a['status'] != r.status:
        return 'audit %s %s %s, want %s %s %d' % (a['method'], a['path'], a['status'],
                                                  c['method'], path, r.status)
    if a['token'] != want_token:
        return 'audit token %r, want %r' % (a['token'], want_token)
    if not isinstance(a['remote'], str) or not a['remote'].startswith('127.0.0.1'):
        return 'audit remote %r' % a['remote']
    if c['kind'] == 'fail' and a['sha256_before'] != a['sha256_after']:
        return 'failed call audited with a changed sha256'
    if c['kind'] == 'commit':
        v = c['kw'].get('version')
        if a['version'] != v or a['sha256_after'] == a['sha256_before']:
            return 'audit version %r (want %r), sha %r -> %r' % (
                a['version'], v, a['sha256_before'], a['sha256_after'])
    return None


# ------------------------------------------------------------------- step cases
# Cases that need more than one call or a process change: description, fn(ctx) -> error.
def step_concurrent_writers(ctx):
    v = ctx.current()
    hist0 = len(ctx.call('GET', '/v1/policy/history').json)
    n0 = len(ctx.audit_lines())
    barrier = threading.Barrier(2)
    out = [None, None]

    def writer(i):
        barrier.wait()
        out[i] = ctx.call('PUT', '/v1/policy', dumps(policy(2000 + i)),
                          headers={'If-Match': '"%d"' % v})

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    got = sorted(r.status for r in out)
    if got != [200, 412]:
        return 'statuses %r, want one 200 and one 412' % got
    win = out[0] if out[0].status == 200 else out[1]
    if win.json.get('version') != v + 1 or ctx.current() != v + 1:
        return 'winner %r, current %r' % (win, ctx.current())
    if len(ctx.call('GET', '/v1/policy/history').json) != hist0 + 1:
        return 'history grew by more than one'
    lines = H.wait_for(lambda: len(ctx.audit_lines()) >= n0 + 2, 2)
    return None if lines and len(ctx.audit_lines()) == n0 + 2 else 'want 2 audit lines'


def step_start_dataplane(ctx):
    ctx.dp = H.Dataplane(ctx.build, ctx.instance, 'egwrest%d' % os.getpid(), ctx.work)
    if not ctx.dp.start():
        return 'the dataplane did not start: %s' % open(ctx.dp.err_path).read()[-400:]
    want = ctx.current()
    ok = H.wait_for(lambda: health_is(ctx.call('GET', '/v1/health', who=None), 'connected', want),
                    15, 0.1)
    return None if ok else 'health %r' % ctx.call('GET', '/v1/health', who=None)


def step_stats(ctx):
    r = ctx.call('GET', '/v1/stats', who='reader')
    if r.status != 200 or not isinstance(r.json, dict):
        return repr(r)
    miss = [k for k in ('ports', 'drops') if k not in r.json]
    if miss:
        return 'stats without %s: %r' % (miss, list(r.json))
    if not isinstance(r.json['ports'], list) or len(r.json['ports']) < 2:
        return 'stats ports %r' % r.json['ports']
    return None


def step_flows(ctx):
    r = ctx.call('GET', '/v1/flows?limit=5', who='reader')
    if r.status == 501:
        return check_error_shape(r)
    if r.status != 200:
        return repr(r)
    flows = r.json.get('flows') if isinstance(r.json, dict) else r.json
    if not isinstance(flows, list) or len(flows) > 5:
        return 'not a list of at most 5 flows: %r' % r
    bad = ctx.call('GET', '/v1/flows?limit=abc', who='reader')
    return None if bad.status == 400 and not check_error_shape(bad) else 'limit=abc: %r' % bad


def step_put_inspect_active(ctx):
    """A policy with an inspect rule compiles, publishes and activates like any other."""
    v = ctx.current()
    r = ctx.call('PUT', '/v1/policy', dumps(inspect_policy()))
    if r.status != 200 or r.json.get('active') is not True or r.json.get('version') != v + 1:
        return repr(r)
    bad = stats_are(rules=2, domains=2, regexes=1, inspect_rules=1, inspect_patterns=2)(ctx, r)
    if bad:
        return bad
    h = ctx.call('GET', '/v1/health', who=None).json
    if h.get('policy_version') != v + 1 or h.get('dataplane_policy_version') != v + 1:
        return 'health %r' % h
    return None


def step_put_active(ctx):
    v = ctx.current()
    activations = []
    for i in range(3):
        r = ctx.call('PUT', '/v1/policy', dumps(policy(3000 + i)))
        if r.status != 200 or r.json.get('active') is not True or r.json.get('version') != v + i + 1:
            return repr(r)
        ms = r.json.get('activation_ms')
        if not isinstance(ms, (int, float)) or ms < 0:
            return 'activation_ms %r' % ms
        bad = stats_are(rules=3, domains=0, regexes=0, inspect_rules=0, inspect_patterns=0)(ctx, r)
        if bad:
            return bad
        activations.append(ms)
    h = ctx.call('GET', '/v1/health', who=None).json
    if h.get('policy_version') != v + 3 or h.get('dataplane') != 'connected':
        return 'health %r' % h
    return None


def step_burst(ctx):
    """16 concurrent commits: each is answered 200 (or 429/503 when the ring is full);
    history grows by the 200s, and the current document is the last one committed."""
    hist0 = len(ctx.call('GET', '/v1/policy/history').json)
    out = [None] * 16
    barrier = threading.Barrier(len(out))

    def writer(i):
        barrier.wait()
        out[i] = ctx.call('PUT', '/v1/policy', dumps(policy(5000 + i)))

    ts = [threading.Thread(target=writer, args=(i,)) for i in range(len(out))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    bad = [r for r in out if r.status not in (200, 429, 503)]
    if bad:
        return 'unexpected answers: %r' % bad[:2]
    ok = {r.json['version']: i for i, r in enumerate(out) if r.status == 200}
    hist = ctx.call('GET', '/v1/policy/history').json
    if len(hist) != hist0 + len(ok) or sorted(ok) != [e['version'] for e in hist[hist0:]]:
        return '%d commits answered 200, history grew by %d' % (len(ok), len(hist) - hist0)
    last = max(ok)
    if ctx.call('GET', '/v1/policy').json != policy(5000 + ok[last]):
        return 'the current document is not the one committed as v%d' % last
    conv = H.wait_for(lambda: ctx.call('GET', '/v1/health', who=None).json.get(
        'dataplane_policy_version', last) == last, 5)
    return None if conv else 'the dataplane did not end at v%d' % last


def step_rollback_active(ctx):
    v = ctx.current()
    r = ctx.call('POST', '/v1/policy/rollback', '{"version":1}')
    if r.status != 200 or r.json.get('active') is not True or r.json.get('version') != v + 1:
        return repr(r)
    return None if ctx.call('GET', '/v1/policy').json == policy() else 'document is not v1'


def step_activation_metric(ctx):
    r = ctx.call('GET', '/metrics', who='reader')
    m = re.search(rb'^egw_policy_activation_seconds_count(\{[^}]*\})? (\d+)', r.body, re.M)
    if not m or int(m.group(2)) < 4:
        return 'egw_policy_activation_seconds_count missing or < 4'
    return None


def step_stop_dataplane(ctx):
    rc = ctx.dp.stop()
    last = [l for l in ctx.dp.stdout().splitlines() if l.strip()][-1:]
    ctx.dp = None
    if rc != 0:
        return 'dataplane exit %r' % rc
    try:
        json.loads(last[0])['drops']
    except (ValueError, IndexError, KeyError, TypeError):
        return 'no final counters JSON: %r' % last
    ok = H.wait_for(lambda: ctx.call('GET', '/v1/health', who=None).json.get('dataplane') ==
                    'disconnected', 15, 0.2)
    if not ok:
        return 'health still says connected 15 s after the dataplane stopped'
    r = ctx.call('GET', '/v1/stats')
    return None if r.status == 503 and not check_error_shape(r) else 'stats %r' % r


def step_put_after_disconnect(ctx):
    v = ctx.current()
    r = ctx.call('PUT', '/v1/policy', dumps(policy(4000)))
    if r.status != 200 or r.json.get('active') is not False or r.json.get('version') != v + 1:
        return repr(r)
    return None


def step_restart_mgmt(ctx):
    before = ctx.snapshot()
    hist = ctx.call('GET', '/v1/policy/history').body
    ctx.mgmt.stop()
    if not ctx.mgmt.start():
        return 'egw-mgmt did not restart: %s' % ctx.mgmt.output()[-400:]
    after = ctx.snapshot()
    if after != before or ctx.call('GET', '/v1/policy/history').body != hist:
        return 'state after restart differs: %r vs %r' % (after[:3], before[:3])
    return None


def set_blob_abi(path, abi):
    """Rewrites the header's abi_version (bytes 4-5, little endian) of a stored blob."""
    with open(path, 'r+b') as f:
        f.seek(4)
        f.write(abi.to_bytes(2, 'little'))


def last_audit(state):
    with open(os.path.join(state, 'audit.jsonl'), 'rb') as f:
        return json.loads(f.read().splitlines()[-1])


def step_upgrade_recompiles(ctx):
    """A state dir from before a blob ABI change: the current version's blob is recompiled
    from its document (same version), stored, audited and published; a document the new
    build refuses is not published and /v1/health says why, until a new commit."""
    d = os.path.join(ctx.work, 'state-upgrade')
    os.makedirs(d)
    inst = ctx.instance + 'u'
    m = H.Mgmt(ctx.build, inst, d, tokens=ctx.tokens_file)
    ctx.others.append(m)
    if not m.start():
        return 'did not start: %s' % m.output()[-300:]
    tok = ctx.auth('admin')
    r = H.request(m.port, 'PUT', '/v1/policy', dumps(names_policy()), tok)
    if r.status != 200 or r.json.get('version') != 1:
        return 'PUT v1: %r' % r
    m.stop()
    current, stored = os.path.join(d, 'current.egwp'), os.path.join(d, 'versions/1/policy.egwp')
    good = open(current, 'rb').read()
    abi = int.from_bytes(good[4:6], 'little')
    for p in (current, stored):
        set_blob_abi(p, abi - 1)
    if not m.start():
        return 'did not restart: %s' % m.output()[-300:]
    if not H.wait_for(lambda: open(current, 'rb').read() == good, 10):
        return 'current.egwp was not recompiled at start (ABI %d)' % abi
    if open(stored, 'rb').read() != good:
        return 'versions/1/policy.egwp was not replaced'
    a = last_audit(d)
    if a.get('method') != 'RECOMPILE' or a.get('status') != 200 or a.get('version') != 1 or \
            'policy ABI version %d' % (abi - 1) not in a.get('detail', ''):
        return 'audit %r' % a
    if 'recompiled from its document' not in m.output():
        return 'nothing on stderr: %s' % m.output()[-300:]
    h = H.request(m.port, 'GET', '/v1/health').json
    if h.get('status') != 'ok' or 'policy_error' in h:
        return 'health %r' % h
    # A dataplane that connects is given the recompiled blob.
    set_blob_abi(current, abi - 1)
    set_blob_abi(stored, abi - 1)
    dp = H.Dataplane(ctx.build, inst, 'egwrestu%d' % os.getpid(), ctx.work)
    ctx.others.append(dp)
    if not dp.start():
        return 'the dataplane did not start: %s' % open(dp.err_path).read()[-300:]
    ok = H.wait_for(lambda: H.request(m.port, 'GET', '/v1/health').json.get(
        'dataplane_policy_version') == 1, 15, 0.1)
    if not ok or open(current, 'rb').read() != good:
        return 'on connect: health %r' % H.request(m.port, 'GET', '/v1/health').json
    # The document no longer compiles: nothing published, health says why.
    m.stop()
    doc = os.path.join(d, 'versions/1/policy.json')
    text = open(doc, 'rb').read().replace(b'"schema"', b'"retired": true, "schema"', 1)
    open(doc, 'wb').write(text)
    meta_path = os.path.join(d, 'versions/1/meta.json')
    meta = json.load(open(meta_path))
    meta['sha256'] = hashlib.sha256(text).hexdigest()
    open(meta_path, 'w').write(json.dumps(meta))
    set_blob_abi(current, abi - 1)
    set_blob_abi(stored, abi - 1)
    old = open(current, 'rb').read()
    if not m.start():
        return 'did not restart: %s' % m.output()[-300:]
    ok = H.wait_for(lambda: H.request(m.port, 'GET', '/v1/health').json.get('status') ==
                    'degraded', 10, 0.1)
    h = H.request(m.port, 'GET', '/v1/health').json
    if not ok or '/retired' not in h.get('policy_error', '') or \
            'no longer compiles' not in h.get('policy_error', ''):
        return 'health %r' % h
    if open(current, 'rb').read() != old:
        return 'current.egwp changed although the document does not compile'
    a = last_audit(d)
    if a.get('method') != 'RECOMPILE' or a.get('status') != 500:
        return 'audit %r' % a
    r = H.request(m.port, 'PUT', '/v1/policy', dumps(names_policy()), tok)
    h = H.request(m.port, 'GET', '/v1/health').json
    if r.status != 200 or r.json.get('version') != 2 or h.get('status') != 'ok' or \
            'policy_error' in h or h.get('dataplane_policy_version') != 2:
        return 'after a new commit: %r, health %r' % (r, h)
    dp.stop()
    m.stop()
    return None


def step_generated_admin_token(ctx):
    d = os.path.join(ctx.work, 'state-gen')
    os.makedirs(d)
    m = H.Mgmt(ctx.build, ctx.instance + 'g', d)
    ctx.others.append(m)
    if not m.start():
        return 'did not start: %s' % m.output()[-300:]
    p = os.path.join(d, 'admin.token')
    if not os.path.exists(p):
        return 'no admin.token'
    mode = stat.S_IMODE(os.stat(p).st_mode)
    if mode != 0o600:
        return 'admin.token mode %o' % mode
    tok = open(p).read().split()[0]
    r = H.request(m.port, 'PUT', '/v1/policy', dumps(policy()), {'Authorization': 'Bearer ' + tok})
    if r.status != 200 or r.json.get('version') != 1:
        return 'PUT with the generated token: %r' % r
    r2 = H.request(m.port, 'GET', '/v1/policy', None, {'Authorization': 'Bearer ' + tok + 'x'})
    m.stop()
    return None if r2.status == 401 else 'a wrong token: %r' % r2


def step_refuses_public_listen(ctx):
    d = os.path.join(ctx.work, 'state-pub')
    os.makedirs(d)
    m = H.Mgmt(ctx.build, ctx.instance + 'p', d, tokens=ctx.tokens_file)
    m.extra = []
    argv = m.argv()
    argv[argv.index('--listen') + 1] = '0.0.0.0:%d' % m.port
    r = subprocess.run(argv, capture_output=True, timeout=10)
    if r.returncode == 0:
        return 'listened on 0.0.0.0 without TLS (exit 0)'
    err = (r.stdout + r.stderr).decode('utf-8', 'replace')
    return None if 'insecure' in err or 'TLS' in err or 'loopback' in err else 'message: %s' % err


def step_tls(ctx):
    if not shutil.which('openssl'):
        return 'the openssl command is missing (make deps installs it)'
    pair = H.self_signed(ctx.work)
    if not pair:
        return 'openssl could not make a certificate'
    d = os.path.join(ctx.work, 'state-tls')
    os.makedirs(d)
    m = H.Mgmt(ctx.build, ctx.instance + 't', d, tokens=ctx.tokens_file,
               extra=['--tls-cert', pair[0], '--tls-key', pair[1]])
    ctx.others.append(m)
    if not m.start():
        return 'did not start with TLS: %s' % m.output()[-300:]
    tls = ssl.create_default_context(cafile=pair[0])
    r = H.request(m.port, 'GET', '/v1/policy/history', None, ctx.auth('reader'), tls_ctx=tls)
    if r.status != 200 or r.json != []:
        return 'HTTPS GET %r' % r
    r = H.request(m.port, 'GET', '/v1/policy/history', None, ctx.auth(None), tls_ctx=tls)
    if r.status != 401:
        return 'HTTPS without a token %r' % r
    try:
        H.request(m.port, 'GET', '/v1/health', timeout=5)
        plain = 'answered plain HTTP on the TLS port'
    except Exception:  # noqa: BLE001 - any failure of plain HTTP is the expected outcome
        plain = None
    m.stop()
    return plain


def step_metrics_listen(ctx):
    d = os.path.join(ctx.work, 'state-metrics')
    os.makedirs(d)
    mport = H.free_port()
    m = H.Mgmt(ctx.build, ctx.instance + 'm', d, tokens=ctx.tokens_file,
               extra=['--metrics-listen', '127.0.0.1:%d' % mport])
    ctx.others.append(m)
    if not m.start():
        return 'did not start: %s' % m.output()[-300:]
    r = H.wait_for(lambda: H.try_request(mport, 'GET', '/metrics'), 5)
    if r is None or r.status != 200 or b'egw_policy_version' not in r.body:
        return '/metrics on --metrics-listen without a token: %r' % r
    r = H.request(m.port, 'GET', '/metrics')
    m.stop()
    return None if r.status == 401 else 'the API listener served /metrics without a token'


def step_audit_log_whole(ctx):
    lines = ctx.audit_lines()
    for l in lines:
        try:
            a = json.loads(l)
        except ValueError:
            return 'not JSON: %r' % l[:100]
        if any(k not in a for k in AUDIT_FIELDS):
            return 'line without a field: %r' % a
        if not re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z', a['time']):
            return 'time %r' % a['time']
    hist = ctx.call('GET', '/v1/policy/history').json
    recs = [json.loads(l) for l in lines]
    commits = [a for a in recs if a['status'] == 200 and (
        a['method'] in ('PUT', 'DELETE') or a['path'] == '/v1/policy/rollback')]
    if len(commits) != len(hist):
        return '%d successful mutations audited, %d versions in history' % (len(commits), len(hist))
    mode = stat.S_IMODE(os.stat(os.path.join(ctx.state, 'audit.jsonl')).st_mode)
    if mode & 0o077 & ~0o044:
        return 'audit.jsonl is writable by others (mode %o)' % mode
    return None


STEPS_CONNECTED = [
    ('two concurrent writers with one If-Match: exactly one wins, the other gets 412',
     step_concurrent_writers),
    ('a dataplane connects: egw-mgmt republishes, health connected at the current version',
     step_start_dataplane),
    ('GET /v1/stats with the dataplane: ports and drops', step_stats),
    ('GET /v1/flows with the dataplane: at most limit flows; a bad limit is 400', step_flows),
    ('3 PUTs with the dataplane: active true, activation_ms, health at the new version',
     step_put_active),
    ('PUT a policy with inspect rules with the dataplane: active true, inspect stats',
     step_put_inspect_active),
    ('a burst of 16 concurrent commits: each answered, none lost or torn', step_burst),
    ('rollback with the dataplane: active true, the v1 document', step_rollback_active),
    ('/metrics: egw_policy_activation_seconds counted every activation', step_activation_metric),
    ('the dataplane stops: final counters, health disconnected, stats 503', step_stop_dataplane),
    ('PUT after the dataplane left: committed, active false', step_put_after_disconnect),
    ('egw-mgmt restarted on its state dir: same document, ETag, history', step_restart_mgmt),
    ('after a blob ABI change: the current blob is recompiled, stored, audited, published; '
     'a document that no longer compiles is not, and health says why', step_upgrade_recompiles),
    ('no tokens file: DIR/admin.token (0600) is an admin token', step_generated_admin_token),
    ('without TLS it refuses to listen on 0.0.0.0', step_refuses_public_listen),
    ('HTTPS with --tls-cert/--tls-key: authenticated calls work, plain HTTP does not',
     step_tls),
    ('--metrics-listen serves /metrics without a token; the API port still wants one',
     step_metrics_listen),
    ('audit.jsonl: every line whole, one successful mutation per version', step_audit_log_whole),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default='build')
    ap.add_argument('-k', help='run only cases whose description contains this')
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    for b in ('egw-mgmt', 'egw-dataplane'):
        if not os.access(os.path.join(build, b), os.X_OK):
            print('FAIL set-up: %s/%s not built (make all)' % (build, b))
            print('0 passed, 1 failed')
            return 1
    # A time limit's SIGTERM still runs the clean-up below (processes, shm, temp dirs).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ctx = Ctx(build)
    passed = failed = 0
    try:
        if not ctx.mgmt.start():
            print('FAIL set-up: egw-mgmt did not start: %s' % ctx.mgmt.output()[-500:])
            print('0 passed, 1 failed')
            return 1
        cases = [(c['desc'], lambda c=c: run_http_case(ctx, c)) for c in http_cases()]
        cases += [(d, lambda f=f: f(ctx)) for d, f in STEPS_CONNECTED]
        for desc, fn in cases:
            if args.k and args.k not in desc:
                continue
            t0 = time.monotonic()
            try:
                bad = fn()
            except Exception as e:  # noqa: BLE001 - a crashing case is a failed case
                bad = 'exception %s: %s' % (type(e).__name__, e)
            ms = (time.monotonic() - t0) * 1000
            if bad is None:
                passed += 1
                print('PASS %s (%.0f ms)' % (desc, ms))
            else:
                failed += 1
                print('FAIL %s: %s' % (desc, bad))
            sys.stdout.flush()
    finally:
        ctx.close()
        if failed:
            print('logs kept in %s' % ctx.work)
        else:
            shutil.rmtree(ctx.work, ignore_errors=True)
    print('%d passed, %d failed' % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
