#!/usr/bin/python3
# Table tests of prom_text.py, the strict /metrics linter: every rule has a text that breaks
# it alone, and the valid texts show what egw-mgmt may write.
#   python3 tests/support/prom_text_test.py
import math
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import prom_text  # noqa: E402
from prom_text import PromError  # noqa: E402

GAUGE = '# HELP egw_workers Worker lcores.\n# TYPE egw_workers gauge\negw_workers 2\n'
COUNTER = ('# HELP egw_drops_total Dropped packets.\n# TYPE egw_drops_total counter\n'
           'egw_drops_total{reason="policy"} 5\negw_drops_total{reason="no_route"} 0\n')
HIST_HEAD = ('# HELP egw_policy_activation_seconds Activation time.\n'
             '# TYPE egw_policy_activation_seconds histogram\n')
HIST_BODY = ('egw_policy_activation_seconds_bucket{le="0.1"} 1\n'
             'egw_policy_activation_seconds_bucket{le="1"} 3\n'
             'egw_policy_activation_seconds_bucket{le="+Inf"} 4\n'
             'egw_policy_activation_seconds_sum 2.5\n'
             'egw_policy_activation_seconds_count 4\n')
HIST = HIST_HEAD + HIST_BODY
SUMMARY = ('# HELP egw_rtt_seconds Round trips.\n# TYPE egw_rtt_seconds summary\n'
           'egw_rtt_seconds{quantile="0.5"} 0.01\negw_rtt_seconds{quantile="0.99"} NaN\n'
           'egw_rtt_seconds_sum 0.2\negw_rtt_seconds_count 7\n')


def gauge(sample, name='egw_x'):
    return f'# HELP {name} X.\n# TYPE {name} gauge\n{sample}\n'


def hist(body):
    return HIST_HEAD + ''.join(f'egw_policy_activation_seconds{line}\n' for line in body)


# (what it breaks, text, expected substring of the error, expected line)
INVALID = [
    ('no trailing newline', GAUGE[:-1], 'does not end with a newline', 3),
    ('lone newline', '\n', 'empty line', 1),
    ('empty line between families', GAUGE + '\n' + COUNTER, 'empty line', 4),
    ('CRLF', GAUGE.replace('\n', '\r\n'), 'carriage return', 1),
    ('invalid UTF-8', gauge('egw_x{port="\xff"} 1').encode('latin-1'), 'invalid UTF-8', 3),
    ('duplicate HELP', '# HELP egw_x a\n' + gauge('egw_x 1'), 'duplicate HELP', 2),
    ('duplicate TYPE', '# TYPE egw_x gauge\n# HELP egw_x X.\n# TYPE egw_x gauge\negw_x 1\n',
     'duplicate TYPE', 3),
    ('TYPE after sample', '# HELP egw_x X.\negw_x 1\n# TYPE egw_x gauge\n',
     'TYPE of egw_x must come before', 2),
    ('HELP after sample', '# TYPE egw_x gauge\negw_x 1\n# HELP egw_x X.\n',
     'HELP of egw_x must come before', 2),
    ('HELP after samples of a typed family', gauge('egw_x 1') + '# HELP egw_x again\n',
     'HELP of egw_x after its samples', 4),
    ('no HELP', '# TYPE egw_x gauge\n# TYPE egw_y gauge\n', 'egw_x has no HELP', 1),
    ('no TYPE', '# HELP egw_x X.\n', 'egw_x has no TYPE', 1),
    ('empty HELP', '# HELP egw_x\n# TYPE egw_x gauge\negw_x 1\n', 'empty HELP', 1),
    ('bad HELP escape', '# HELP egw_x a\\tb\n# TYPE egw_x gauge\negw_x 1\n',
     'invalid escape sequence \\t', 1),
    ('HELP with a tab', '#\tHELP egw_x X.\n# TYPE egw_x gauge\negw_x 1\n', 'malformed HELP', 1),
    ('untyped family', '# HELP egw_x X.\n# TYPE egw_x untyped\negw_x 1\n', 'untyped', 2),
    ('unknown type', '# HELP egw_x X.\n# TYPE egw_x meter\negw_x 1\n', "unknown TYPE 'meter'", 2),
    ('sample without metadata', GAUGE + 'egw_y 1\n', 'egw_y has no TYPE', 4),
    ('interleaved family', GAUGE + COUNTER + 'egw_workers 3\n',
     'of family egw_workers after family egw_drops_total', 8),
    ('family twice', GAUGE + COUNTER + GAUGE, 'egw_workers appears twice', 8),
    ('metric name without egw_', gauge('up 1', name='up'), 'does not start with egw_', 1),
    ('metric name with a colon', gauge('egw_a:b 1', name='egw_a:b'), 'snake_case', 1),
    ('invalid metric name', '# HELP 1egw X.\n', 'invalid metric name', 1),
    ('non-base unit', gauge('egw_rtt_milliseconds 1', name='egw_rtt_milliseconds'),
     'use base unit seconds', 1),
    ('label name starting with __', gauge('egw_x{__port="1"} 1'), 'starts with __', 3),
    ('invalid label name', gauge('egw_x{1port="1"} 1'), 'invalid label name', 3),
    ('forbidden label name', gauge('egw_x{sni="example.com"} 1'), "label name 'sni' is forbidden", 3),
    ('IPv4 label value', gauge('egw_x{peer="192.0.2.1"} 1'), 'is an IP address', 3),
    ('IPv6 label value', gauge('egw_x{peer="2001:db8::1"} 1'), 'is an IP address', 3),
    ('address:port label value', gauge('egw_x{peer="192.0.2.1:53"} 1'), 'is an IP address', 3),
    ('duplicate label name', gauge('egw_x{port="0",port="1"} 1'), "duplicate label name 'port'", 3),
    ('bad label escape', gauge('egw_x{port="a\\tb"} 1'), 'invalid escape sequence \\t', 3),
    ('unquoted label value', gauge('egw_x{port=0} 1'), 'expected ="', 3),
    ('unterminated label value', gauge('egw_x{port="0} 1'), 'unterminated value', 3),
    ('trailing comma', gauge('egw_x{port="0",} 1'), 'trailing comma', 3),
    ('duplicate series', gauge('egw_x{a="1",b="2"} 1\negw_x{b="2",a="1"} 2'),
     'duplicate series egw_x{a="1",b="2"} (first at line 3)', 4),
    ('bad float', gauge('egw_x 1,5'), "invalid value '1,5'", 3),
    ('lowercase inf', gauge('egw_x inf'), "invalid value 'inf'", 3),
    ('no value', gauge('egw_x'), 'expected a space', 3),
    ('two spaces', gauge('egw_x  1'), 'extra whitespace', 3),
    ('trailing space', gauge('egw_x 1 '), 'extra whitespace', 3),
    ('timestamp', gauge('egw_x 1 1700000000000'), 'timestamp not allowed', 3),
    ('bad timestamp', gauge('egw_x 1 1.5'), "invalid timestamp '1.5'", 3),
    ('garbage after timestamp', gauge('egw_x 1 2 3'), 'trailing garbage', 3),
    ('counter without _total', '# HELP egw_drops D.\n# TYPE egw_drops counter\negw_drops 1\n',
     'does not end in _total', 2),
    ('gauge with _total', gauge('egw_x_total 1', name='egw_x_total'), 'which is for counters', 2),
    ('gauge with _count', gauge('egw_x_count 1', name='egw_x_count'), 'reserved for histograms', 2),
    ('negative counter', COUNTER.replace('} 0', '} -1'), 'negative or NaN', 4),
    ('NaN counter', COUNTER.replace('} 0', '} NaN'), 'negative or NaN', 4),
    ('counter sample with a suffix', COUNTER + 'egw_drops_total_sum 1\n', 'no TYPE', 5),
    ('le label on a gauge', gauge('egw_x{le="1"} 1'), 'reserved for histogram buckets', 3),
    ('histogram bare sample', hist([' 1']), 'only _bucket, _sum, _count', 3),
    ('histogram bucket without le', hist(['_bucket 1']), 'has no le label', 3),
    ('histogram le not a number', hist(['_bucket{le="x"} 1']), "le='x' is not a number", 3),
    ('histogram not sorted', hist(['_bucket{le="1"} 1', '_bucket{le="0.5"} 1']),
     'not sorted by le', 4),
    ('histogram not cumulative', hist(['_bucket{le="0.5"} 2', '_bucket{le="1"} 1']),
     'not cumulative', 4),
    ('histogram +Inf != count', HIST.replace('_count 4', '_count 5'),
     'le="+Inf" bucket 4.0 != _count 5.0', 7),
    ('histogram without +Inf', hist(['_bucket{le="1"} 1', '_sum 1', '_count 1']),
     'has no le="+Inf" bucket', 5),
    ('histogram without _sum', HIST.replace('egw_policy_activation_seconds_sum 2.5\n', ''),
     'has no egw_policy_activation_seconds_sum', 6),
    ('histogram without _count', HIST.replace('egw_policy_activation_seconds_count 4\n', ''),
     'has no egw_policy_activation_seconds_count', 6),
    ('histogram one label set without _sum',
     hist(['_bucket{port="0",le="+Inf"} 1', '_sum{port="0"} 1', '_count{port="0"} 1',
           '_bucket{port="1",le="+Inf"} 1', '_count{port="1"} 1']),
     'egw_policy_activation_seconds{port="1"} has no egw_policy_activation_seconds_sum', 7),
    ('histogram _sum with le', HIST.replace('seconds_sum', 'seconds_sum{le="1"}'),
     'reserved for histogram buckets', 6),
    ('quantile label on a summary _sum', SUMMARY.replace('seconds_sum', 'seconds_sum{quantile="1"}'),
     'reserved for summaries', 5),
    ('summary without quantile', SUMMARY.replace('{quantile="0.5"}', ''), 'no quantile label', 3),
    ('summary quantile out of range', SUMMARY.replace('0.99', '1.5'), 'not in [0, 1]', 4),
    ('summary without _count', SUMMARY.replace('egw_rtt_seconds_count 7\n', ''),
     'has no egw_rtt_seconds_count', 5),
]

# (what it shows, text, {family: (type, number of samples)})
VALID = [
    ('empty text', '', {}),
    ('gauge', GAUGE, {'egw_workers': ('gauge', 1)}),
    ('counter with labels', COUNTER, {'egw_drops_total': ('counter', 2)}),
    ('histogram', HIST, {'egw_policy_activation_seconds': ('histogram', 5)}),
    ('summary', SUMMARY, {'egw_rtt_seconds': ('summary', 4)}),
    ('all together, TYPE before HELP, a comment',
     '# a comment\n' + COUNTER + '# TYPE egw_workers gauge\n# HELP egw_workers W.\negw_workers 2\n'
     + HIST, {'egw_drops_total': ('counter', 2), 'egw_workers': ('gauge', 1),
              'egw_policy_activation_seconds': ('histogram', 5)}),
    ('histogram with two label sets',
     hist(['_bucket{port="0",le="1"} 0', '_bucket{port="0",le="+Inf"} 0', '_sum{port="0"} 0',
           '_count{port="0"} 0', '_bucket{port="1",le="1"} 1', '_bucket{port="1",le="+Inf"} 2',
           '_sum{port="1"} 7.5', '_count{port="1"} 2']),
     {'egw_policy_activation_seconds': ('histogram', 8)}),
    ('escaped label value and HELP', '# HELP egw_x a \\\\ b\\nc\n# TYPE egw_x gauge\n'
     'egw_x{reason="q\\"uo\\\\te\\nd"} 1\n', {'egw_x': ('gauge', 1)}),
    ('float spellings', gauge('egw_x{a="1"} -1.5e-3\negw_x{a="2"} +Inf\negw_x{a="3"} -Inf\n'
                              'egw_x{a="4"} NaN\negw_x{a="5"} .5\negw_x{a="6"} 1E6'),
     {'egw_x': ('gauge', 6)}),
    ('metadata without samples', '# HELP egw_drops_total D.\n# TYPE egw_drops_total counter\n',
     {'egw_drops_total': ('counter', 0)}),
    ('empty braces and non-IP label values',
     gauge('egw_x{} 1\negw_x{rule="allow.dns:53"} 2\negw_x{port="0"} 3'), {'egw_x': ('gauge', 3)}),
]


class InvalidTest(unittest.TestCase):
    def test_cases(self):
        for what, text, want, line in INVALID:
            with self.subTest(what):
                with self.assertRaises(PromError) as cm:
                    prom_text.parse(text)
                self.assertIn(want, cm.exception.message)
                self.assertEqual(cm.exception.line, line, cm.exception.message)


class ValidTest(unittest.TestCase):
    def test_cases(self):
        for what, text, want in VALID:
            with self.subTest(what):
                families = prom_text.parse(text)
                got = {name: (f['type'], len(f['samples'])) for name, f in families.items()}
                self.assertEqual(got, want)

    def test_content(self):
        families = prom_text.parse('# HELP egw_x a \\\\ b\\nc\n# TYPE egw_x gauge\n'
                                   'egw_x{reason="q\\"uo\\\\te\\nd"} -Inf\n')
        self.assertEqual(families['egw_x']['help'], 'a \\ b\nc')
        self.assertEqual(families['egw_x']['samples'],
                         [('egw_x', {'reason': 'q"uo\\te\nd'}, -math.inf)])

    def test_timestamps_when_allowed(self):
        families = prom_text.parse(gauge('egw_x 1 -5'), allow_timestamps=True)
        self.assertEqual(families['egw_x']['samples'], [('egw_x', {}, 1.0)])


class ValueTest(unittest.TestCase):
    def test_lookup(self):
        families = prom_text.parse(COUNTER + HIST)
        self.assertEqual(prom_text.value(families, 'egw_drops_total', reason='policy'), 5.0)
        self.assertEqual(prom_text.value(families, 'egw_policy_activation_seconds_bucket',
                                         le='+Inf'), 4.0)
        self.assertEqual(prom_text.value(families, 'egw_policy_activation_seconds_count'), 4.0)
        for name, labels in [('egw_drops_total', {}),  # two match
                             ('egw_drops_total', {'reason': 'nat'}),  # none match
                             ('egw_nothing', {})]:
            with self.subTest(name=name, labels=labels):
                with self.assertRaises(LookupError):
                    prom_text.value(families, name, **labels)


class CliTest(unittest.TestCase):
    def run_cli(self, text):
        return subprocess.run([sys.executable, os.path.join(HERE, 'prom_text.py'), '-'],
                              input=text.encode(), capture_output=True)

    def test_ok(self):
        r = self.run_cli(COUNTER + HIST)
        self.assertEqual((r.returncode, r.stdout), (0, b'ok: 2 families, 7 samples\n'))

    def test_error(self):
        r = self.run_cli(GAUGE[:-1])
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, b'line 3: last line does not end with a newline\n')


if __name__ == '__main__':
    # The suite runner's summary line (tests/run_all.sh counts it).
    r = unittest.main(exit=False).result
    bad = len(r.failures) + len(r.errors)
    print(f'{r.testsRun - bad} passed, {bad} failed')
    sys.exit(1 if bad else 0)
