"""The pystachio side of benches/pystachio.rs: the same job built, bound, interpolated, dumped
and checked with pystachio 0.8.10. Prints one JSON line with milliseconds per job."""
import json
import sys
import time

from reference_schema import GB, MesosJob, Process, Resources, Task  # beside this file


def build():
    processes = [
        Process(name='proc%d' % i,
                cmdline='run --x={{var%d}} --role={{role}} --me={{name}} --port={{thermos.ports[http]}}'
                        % (i % 4))
        for i in range(10)
    ]
    task = Task(name='bench', processes=processes,
                resources=Resources(cpu=1.0, ram=GB, disk=GB))
    job = MesosJob(role='{{user}}', cluster='devcluster', environment='prod', task=task)
    return job.bind(var0='a', var1='b', var2='c', var3='d', user='www-data')


def per_job_ms(fn, seconds=2.0):
    """Milliseconds per call: the best mean over batches of ~50 ms during about `seconds`."""
    start = time.perf_counter()
    for _ in range(3):
        fn()
    per_call = (time.perf_counter() - start) / 3
    batch = max(1, int(0.05 / max(per_call, 1e-9)))
    best = float("inf")
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        for _ in range(batch):
            fn()
        best = min(best, (time.perf_counter() - t) * 1000.0 / batch)
    return best


def main():
    job = build()
    dump_ms = per_job_ms(lambda: build().json_dumps())
    check_ms = per_job_ms(lambda: job.check())
    ok = job.check().ok()
    sys.stdout.write(json.dumps({"dump_ms": dump_ms, "check_ms": check_ms, "check_ok": ok,
                                 "json": json.loads(job.json_dumps())}) + "\n")


if __name__ == "__main__":
    main()
