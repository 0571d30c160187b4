"""Runs difftest cases on the real pystachio and prints what it makes of each.

Reads JSON lines on stdin, one case each:
  {"sig": <struct type signature>, "value": {...}, "binds": [{...}, ...]}
and writes one JSON line per case with the outcome of json_dumps(), interpolate() (unbound
refs, sorted), check(), repr() and each field accessor. Errors are reported as
["err", <exception class name>, <message>].
"""
import json
import resource
import signal
import sys

from pystachio.typing import TypeFactory
from pystachio.composite import Empty


def capture(fn):
    try:
        return ["ok", fn()]
    except MemoryError:
        raise
    except Exception as e:  # the outcome, whatever it is, is what we compare
        return ["err", type(e).__name__, str(e)]


def field_text(v, name):
    r = getattr(v, name)()
    return repr(Empty) if r is Empty else str(r)


def run(case):
    sig = case["sig"]
    try:
        cls = TypeFactory.load_json(sig)[sig[1]]
        v = cls(case["value"])
    except Exception as e:
        return {"build": ["err", type(e).__name__, str(e)]}
    for b in case["binds"]:
        v = v.bind(b)
    out = {"build": ["ok", None]}
    out["json"] = capture(lambda: v.json_dumps())
    out["unbound"] = capture(lambda: sorted(str(r) for r in v.interpolate()[1]))
    out["check"] = capture(lambda: str(v.check()))
    out["repr"] = capture(lambda: repr(v))
    out["fields"] = {name: capture(lambda name=name: field_text(v, name)) for name in cls.TYPEMAP}
    return out


class Timeout(BaseException):
    pass


def on_alarm(signum, frame):
    raise Timeout()


def main():
    # Templates that double on every pass make pystachio run out of memory; such cases are
    # reported as "timeout" and skipped by the comparison.
    signal.signal(signal.SIGALRM, on_alarm)
    resource.setrlimit(resource.RLIMIT_AS, (1 << 31, 1 << 31))
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        signal.alarm(1)
        try:
            result = run(json.loads(line))
        except (Timeout, MemoryError):
            result = {"timeout": True}
        finally:
            signal.alarm(0)
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
