#!/usr/bin/python3
# Strict parser and linter of the Prometheus text exposition format 0.0.4, for the tests
# that check egw-mgmt's GET /metrics. Stricter than Prometheus itself on purpose: besides
# the format it enforces promtool-lint style naming and egw's house rules (docs/rest-api.md):
# every family has HELP and TYPE before its samples, no untyped families, names start with
# egw_, counters end in _total, base units only, one canonical spelling of each line, and no
# IP address or host name in any label (metrics must not leak who talked to whom).
#   parse(text) -> {name: {"type", "help", "samples": [(sample_name, {labels}, value)]}}
#   value(families, sample_name, **labels) -> the float of the one matching sample
#   python3 prom_text.py [FILE|-]     prints "ok: N families, M samples" or "line L: message"
# Standard library only.
import ipaddress
import math
import re
import sys

METRIC_NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*')
LABEL_NAME = re.compile(r'[a-zA-Z_][a-zA-Z0-9_]*')
# Go's strconv.ParseFloat also takes hex floats, underscores, "inf", "Infinity"...; a
# metrics endpoint has no reason to write those, so only the decimal form is accepted.
DECIMAL = re.compile(r'[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?')
SPECIAL_VALUES = {'+Inf': math.inf, '-Inf': -math.inf, 'NaN': math.nan}
TIMESTAMP = re.compile(r'-?[0-9]+')
TYPES = ('counter', 'gauge', 'histogram', 'summary', 'untyped')

# Labels that would carry a peer's identity; egw's metrics are aggregates by contract.
FORBIDDEN_LABELS = {'ip', 'addr', 'src_ip', 'dest_ip', 'name', 'host', 'sni'}
# Name tokens of non-base units (promtool lint: seconds and bytes are the base units).
NON_BASE_UNITS = {
    'milliseconds': 'seconds', 'microseconds': 'seconds', 'nanoseconds': 'seconds',
    'minutes': 'seconds', 'hours': 'seconds', 'days': 'seconds',
    'ms': 'seconds', 'us': 'seconds', 'ns': 'seconds', 'sec': 'seconds', 'secs': 'seconds',
    'kilobytes': 'bytes', 'megabytes': 'bytes', 'gigabytes': 'bytes',
    'kb': 'bytes', 'mb': 'bytes', 'gb': 'bytes', 'kib': 'bytes', 'mib': 'bytes', 'gib': 'bytes',
}
SUFFIXES = {'histogram': ('_bucket', '_sum', '_count'), 'summary': ('', '_sum', '_count')}


class PromError(Exception):
    def __init__(self, line, message):
        super().__init__(f'line {line}: {message}')
        self.line = line
        self.message = message


def _float(token):
    if token in SPECIAL_VALUES:
        return SPECIAL_VALUES[token]
    if DECIMAL.fullmatch(token):
        return float(token)
    return None


def _looks_like_ip(value):
    """An address, a prefix, or an address with a port: all identify a peer."""
    candidates = [value]
    if '/' in value:
        candidates.append(value.split('/', 1)[0])
    if value.startswith('[') and ']:' in value:
        candidates.append(value[1:value.index(']:')])
    elif value.count(':') == 1:
        candidates.append(value.split(':', 1)[0])
    for c in candidates:
        try:
            ipaddress.ip_address(c)
            return True
        except ValueError:
            pass
    return False


def _check_family_name(line, name):
    if not METRIC_NAME.fullmatch(name):
        raise PromError(line, f'invalid metric name {name!r}')
    if not name.startswith('egw_'):
        raise PromError(line, f'metric name {name!r} does not start with egw_')
    if not re.fullmatch(r'[a-z0-9_]+', name):
        raise PromError(line, f'metric name {name!r} is not lower snake_case (no capitals, no colons)')
    for token in name.split('_'):
        if token in NON_BASE_UNITS:
            raise PromError(line, f'metric name {name!r}: use base unit {NON_BASE_UNITS[token]}, '
                                  f'not {token}')


def _check_type_name(line, name, mtype):
    if mtype == 'counter' and not name.endswith('_total'):
        raise PromError(line, f'counter {name!r} does not end in _total')
    if mtype != 'counter' and name.endswith('_total'):
        raise PromError(line, f'{mtype} {name!r} ends in _total, which is for counters')
    if mtype not in SUFFIXES:
        for suffix in ('_bucket', '_sum', '_count'):
            if name.endswith(suffix):
                raise PromError(line, f'{mtype} {name!r} ends in {suffix}, which is reserved for '
                                      'histograms and summaries')


def _unescape(line, text, allowed):
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == '\\':
            nxt = text[i + 1] if i + 1 < len(text) else ''
            if nxt not in allowed:
                raise PromError(line, f'invalid escape sequence \\{nxt}')
            out.append(allowed[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return ''.join(out)


HELP_ESCAPES = {'\\': '\\', 'n': '\n'}
LABEL_ESCAPES = {'\\': '\\', 'n': '\n', '"': '"'}


def _parse_labels(line, text, pos):
    """Parses '{...}' at text[pos]; returns (labels, position after '}')."""
    labels = {}
    pos += 1
    if text.startswith('}', pos):
        return labels, pos + 1
    while True:
        m = LABEL_NAME.match(text, pos)
        if not m:
            raise PromError(line, f'invalid label name at column {pos + 1}')
        lname = m.group()
        pos = m.end()
        if not text.startswith('="', pos):
            raise PromError(line, f'expected =" after label name {lname!r}')
        pos += 2
        start = pos
        while pos < len(text) and text[pos] != '"':
            pos += 2 if text[pos] == '\\' else 1
        if pos >= len(text):
            raise PromError(line, f'unterminated value of label {lname!r}')
        lvalue = _unescape(line, text[start:pos], LABEL_ESCAPES)
        pos += 1
        if lname.startswith('__'):
            raise PromError(line, f'label name {lname!r} starts with __, which is reserved')
        if not re.fullmatch(r'[a-z0-9_]+', lname):
            raise PromError(line, f'label name {lname!r} is not lower snake_case')
        if lname in FORBIDDEN_LABELS:
            raise PromError(line, f'label name {lname!r} is forbidden (no addresses or host names '
                                  'in labels)')
        if lname in labels:
            raise PromError(line, f'duplicate label name {lname!r}')
        if _looks_like_ip(lvalue):
            raise PromError(line, f'label {lname}={lvalue!r} is an IP address')
        labels[lname] = lvalue
        if text.startswith(',', pos):
            pos += 1
            if text.startswith('}', pos):
                raise PromError(line, 'trailing comma in label set')
            continue
        if text.startswith('}', pos):
            return labels, pos + 1
        raise PromError(line, f'expected , or }} at column {pos + 1}')


class _Family:
    def __init__(self, name, line):
        self.name = name
        self.line = line  # of its first metadata line, for errors found at its end
        self.help = None
        self.type = None
        self.samples = []  # (sample_name, labels, value, line)

    def owns(self, sample_name):
        suffixes = SUFFIXES.get(self.type, ('',))
        return any(sample_name == self.name + s for s in suffixes)


def _series_key(labels, drop):
    return tuple(sorted((k, v) for k, v in labels.items() if k != drop))


def _fmt_labels(key):
    return '{' + ','.join(f'{k}="{v}"' for k, v in key) + '}'


def _check_histogram(fam, end_line):
    buckets, sums, counts = {}, {}, {}
    for sname, labels, v, line in fam.samples:
        if sname.endswith('_bucket'):
            if 'le' not in labels:
                raise PromError(line, f'{sname} has no le label')
            le = _float(labels['le'])
            if le is None or math.isnan(le):
                raise PromError(line, f'{sname}: le={labels["le"]!r} is not a number')
            if math.isnan(v) or v < 0:
                raise PromError(line, f'{sname}: bucket count {v} is negative or NaN')
            series = buckets.setdefault(_series_key(labels, 'le'), [])
            if series and le <= series[-1][0]:
                raise PromError(line, f'{sname}: buckets not sorted by le ascending '
                                      f'({labels["le"]} after {series[-1][2]})')
            if series and v < series[-1][1]:
                raise PromError(line, f'{sname}: buckets not cumulative ({v} after {series[-1][1]})')
            series.append((le, v, labels['le'], line))
        else:
            if sname.endswith('_count'):
                if math.isnan(v) or v < 0:
                    raise PromError(line, f'{sname}: count {v} is negative or NaN')
                counts[_series_key(labels, None)] = (v, line)
            else:
                sums[_series_key(labels, None)] = (v, line)
    for key in sorted(set(buckets) | set(sums) | set(counts)):
        where = f'{fam.name}{_fmt_labels(key)}'
        if key not in buckets or buckets[key][-1][0] != math.inf:
            raise PromError(end_line, f'histogram {where} has no le="+Inf" bucket')
        if key not in sums:
            raise PromError(end_line, f'histogram {where} has no {fam.name}_sum')
        if key not in counts:
            raise PromError(end_line, f'histogram {where} has no {fam.name}_count')
        inf_value, count_line = buckets[key][-1][1], counts[key][1]
        if inf_value != counts[key][0]:
            raise PromError(count_line, f'histogram {where}: le="+Inf" bucket {inf_value} '
                                        f'!= _count {counts[key][0]}')


def _check_summary(fam, end_line):
    quantiles, sums, counts = {}, set(), set()
    for sname, labels, v, line in fam.samples:
        if sname == fam.name:
            if 'quantile' not in labels:
                raise PromError(line, f'{sname} has no quantile label')
            q = _float(labels['quantile'])
            if q is None or not 0 <= q <= 1:
                raise PromError(line, f'{sname}: quantile={labels["quantile"]!r} is not in [0, 1]')
            series = quantiles.setdefault(_series_key(labels, 'quantile'), [])
            if series and q <= series[-1]:
                raise PromError(line, f'{sname}: quantiles not sorted ascending')
            series.append(q)
        else:
            if sname.endswith('_count'):
                if math.isnan(v) or v < 0:
                    raise PromError(line, f'{sname}: count {v} is negative or NaN')
                counts.add(_series_key(labels, None))
            else:
                sums.add(_series_key(labels, None))
    for key in sorted(set(quantiles) | sums | counts):
        where = f'{fam.name}{_fmt_labels(key)}'
        if key not in sums:
            raise PromError(end_line, f'summary {where} has no {fam.name}_sum')
        if key not in counts:
            raise PromError(end_line, f'summary {where} has no {fam.name}_count')


def _close(fam, end_line):
    if fam.help is None:
        raise PromError(fam.line, f'family {fam.name} has no HELP')
    if fam.type is None:
        raise PromError(fam.line, f'family {fam.name} has no TYPE')
    if fam.type == 'histogram':
        _check_histogram(fam, end_line)
    elif fam.type == 'summary':
        _check_summary(fam, end_line)


def _split_lines(text):
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode('utf-8')
        except UnicodeDecodeError as e:
            raise PromError(text[:e.start].count(b'\n') + 1, 'invalid UTF-8') from None
    else:
        try:
            text.encode('utf-8')
        except UnicodeEncodeError as e:
            raise PromError(text[:e.start].count('\n') + 1, 'invalid UTF-8') from None
    if text == '':
        return []
    lines = text.split('\n')
    if lines[-1] != '':
        raise PromError(len(lines), 'last line does not end with a newline')
    return lines[:-1]


def parse(text, allow_timestamps=False):
    """Families of a /metrics body (str or bytes); PromError on the first violation."""
    families = {}  # name -> _Family, in order of appearance
    series_seen = {}  # (sample name, labels) -> line
    current = None
    lines = _split_lines(text)
    for n, line in enumerate(lines, 1):
        if '\r' in line:
            raise PromError(n, 'carriage return (lines end with \\n alone)')
        if line == '':
            raise PromError(n, 'empty line')
        if line.startswith('#'):
            tokens = line[1:].split(None, 1)
            keyword = tokens[0] if tokens else ''
            if keyword not in ('HELP', 'TYPE'):
                continue  # a plain comment
            if not line.startswith(f'# {keyword} '):
                raise PromError(n, f'malformed {keyword} line (want "# {keyword} name ...")')
            rest = line[len(f'# {keyword} '):]
            name, _, arg = rest.partition(' ')
            _check_family_name(n, name)
            if current is None or current.name != name:
                if name in families:
                    raise PromError(n, f'family {name} appears twice (first at line '
                                       f'{families[name].line}); its lines must be contiguous')
                if current is not None:
                    _close(current, n - 1)
                current = families[name] = _Family(name, n)
            if current.samples:
                raise PromError(n, f'{keyword} of {name} after its samples')
            if keyword == 'HELP':
                if current.help is not None:
                    raise PromError(n, f'duplicate HELP for {name}')
                if not arg:
                    raise PromError(n, f'empty HELP for {name}')
                current.help = _unescape(n, arg, HELP_ESCAPES)
            else:
                if current.type is not None:
                    raise PromError(n, f'duplicate TYPE for {name}')
                if arg not in TYPES:
                    raise PromError(n, f'unknown TYPE {arg!r} for {name}')
                if arg == 'untyped':
                    raise PromError(n, f'family {name} is untyped (every family needs a type)')
                _check_type_name(n, name, arg)
                current.type = arg
            continue

        m = METRIC_NAME.match(line)
        if not m:
            raise PromError(n, 'invalid metric name')
        sname = m.group()
        pos = m.end()
        labels = {}
        if line.startswith('{', pos):
            labels, pos = _parse_labels(n, line, pos)
        if not line.startswith(' ', pos):
            raise PromError(n, f'expected a space after {sname} and its labels')
        tokens = line[pos + 1:].split(' ')
        if '' in tokens or any('\t' in t for t in tokens):
            raise PromError(n, 'extra whitespace (tokens are separated by one space)')
        if len(tokens) > 2:
            raise PromError(n, 'trailing garbage after value and timestamp')
        v = _float(tokens[0])
        if v is None:
            raise PromError(n, f'invalid value {tokens[0]!r}')
        if len(tokens) == 2:
            if not TIMESTAMP.fullmatch(tokens[1]):
                raise PromError(n, f'invalid timestamp {tokens[1]!r}')
            if not allow_timestamps:
                raise PromError(n, 'timestamp not allowed')

        if current is None or not current.owns(sname):
            earlier = next((f for f in families.values() if f is not current and f.owns(sname)),
                           None)
            if earlier is not None:
                raise PromError(n, f'sample {sname} of family {earlier.name} after family '
                                   f'{current.name}; a family\'s samples must be contiguous')
            if current is not None and current.type == 'histogram' and sname == current.name:
                raise PromError(n, f'histogram {sname} has a sample named {sname} (only _bucket, '
                                   '_sum, _count)')
            raise PromError(n, f'sample {sname} has no TYPE (untyped metrics are not allowed)')
        if current.type is None:
            raise PromError(n, f'TYPE of {sname} must come before its first sample')
        if current.help is None:
            raise PromError(n, f'HELP of {current.name} must come before its first sample')
        if 'le' in labels and not (current.type == 'histogram' and sname.endswith('_bucket')):
            raise PromError(n, f'label le on {sname}: reserved for histogram buckets')
        if 'quantile' in labels and not (current.type == 'summary' and sname == current.name):
            raise PromError(n, f'label quantile on {sname}: reserved for summaries')
        key = (sname, frozenset(labels.items()))
        if key in series_seen:
            raise PromError(n, f'duplicate series {sname}{_fmt_labels(sorted(labels.items()))} '
                               f'(first at line {series_seen[key]})')
        series_seen[key] = n
        if current.type == 'counter' and (math.isnan(v) or v < 0):
            raise PromError(n, f'counter {sname} has negative or NaN value {tokens[0]}')
        current.samples.append((sname, labels, v, n))
    if current is not None:
        _close(current, len(lines))
    return {name: {'type': f.type, 'help': f.help,
                   'samples': [(s, lab, v) for s, lab, v, _ in f.samples]}
            for name, f in families.items()}


def value(families, sample_name, **labels):
    """The value of the one sample named sample_name whose labels include the given ones."""
    want = {k: str(v) for k, v in labels.items()}
    found = [v for fam in families.values() for s, lab, v in fam['samples']
             if s == sample_name and all(lab.get(k) == x for k, x in want.items())]
    if len(found) != 1:
        raise LookupError(f'{len(found)} samples match {sample_name}{_fmt_labels(sorted(want.items()))}'
                          ', want exactly 1')
    return found[0]


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ('-h', '--help')):
        print('usage: prom_text.py [FILE|-]', file=sys.stderr)
        return 2
    path = argv[1] if len(argv) == 2 else '-'
    if path == '-':
        data = sys.stdin.buffer.read()
    else:
        with open(path, 'rb') as f:
            data = f.read()
    try:
        families = parse(data)
    except PromError as e:
        print(e, file=sys.stderr)
        return 1
    samples = sum(len(f['samples']) for f in families.values())
    print(f'ok: {len(families)} families, {samples} samples')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
