"""The pystachio 0.8.10 side of benches/pystachio.rs: the same job built, bound, interpolated,
dumped and checked, warm and cold, on schema classes generated from the Rust schema.

Usage: python pystachio_bench.py SCHEMA_DIR
SCHEMA_DIR holds aurora_schema.py (written by the Rust side). Prints one JSON line: what the two
sides must agree on (`json`, `interpolated`, `unbound`, `check_ok`, `check_message`) and the
milliseconds per job (`dump_warm_ms`, `check_warm_ms`, `dump_cold_ms`, `check_cold_ms`).
"""
import json
import sys
import time

from pystachio.naming import Ref

sys.path.insert(0, sys.argv[1])
from aurora_schema import GB, MesosJob, Process, Resources, Task  # noqa: E402

CMDLINE = 'run --x={{var%d}} --role={{role}} --me={{name}} --port={{thermos.ports[http]}}'


def build():
    processes = [Process(name='proc%d' % i, cmdline=CMDLINE % (i % 4)) for i in range(10)]
    task = Task(name='bench', processes=processes,
                resources=Resources(cpu=1.0, ram=GB, disk=GB))
    job = MesosJob(role='{{user}}', cluster='devcluster', environment='prod', task=task)
    return job.bind(var0='a', var1='b', var2='c', var3='d', user='www-data')


def forget():
    """Empties pystachio's own caches (the `lru_cache`s on reference parsing and joining), as
    the Rust side empties its template cache for the cold figures."""
    for cached in (Ref.from_address, Ref.__add__, Ref.subscope):
        cached.cache_clear()


def per_job_ms(fn, seconds=2.0):
    """Milliseconds per call: the best mean over batches of ~50 ms during about `seconds`."""
    start = time.perf_counter()
    for _ in range(3):
        fn()
    per_call = (time.perf_counter() - start) / 3
    batch = max(1, int(0.05 / max(per_call, 1e-9)))
    best = float('inf')
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        best = min(best, (time.perf_counter() - t) * 1000.0 / batch)
    return best


def cold_dump():
    forget()
    return build().json_dumps()


def cold_check():
    forget()
    return build().check()


def main():
    job = build()
    interpolated, unbound = job.interpolate()
    check = job.check()
    facts = {
        'json': json.loads(job.json_dumps()),
        'interpolated': json.loads(interpolated.json_dumps()),
        'unbound': sorted(r.address() for r in unbound),
        'check_ok': check.ok(),
        'check_message': check.message(),
    }
    facts['dump_warm_ms'] = per_job_ms(lambda: build().json_dumps())
    facts['check_warm_ms'] = per_job_ms(job.check)
    facts['dump_cold_ms'] = per_job_ms(cold_dump)
    facts['check_cold_ms'] = per_job_ms(cold_check)
    sys.stdout.write(json.dumps(facts) + '\n')


if __name__ == '__main__':
    main()
