"""The pystachio side of benches/pystachio.rs: the same job built, bound, interpolated, dumped
and checked with pystachio 0.8.10. Prints one JSON line with milliseconds per job."""
import json
import sys
import time

from pystachio import Boolean, Default, Float, Integer, List, Map, Required, String, Struct

GB = 1024 ** 3


class Resources(Struct):
    cpu = Required(Float)
    ram = Required(Integer)
    disk = Required(Integer)


class Constraint(Struct):
    order = List(String)


class Process(Struct):
    cmdline = Required(String)
    name = Required(String)
    resources = Resources
    max_failures = Default(Integer, 1)
    daemon = Default(Boolean, False)
    ephemeral = Default(Boolean, False)
    min_duration = Default(Integer, 5)
    final = Default(Boolean, False)


class Task(Struct):
    name = Default(String, '{{processes[0].name}}')
    processes = List(Process)
    constraints = Default(List(Constraint), [])
    resources = Resources
    max_failures = Default(Integer, 1)
    max_concurrency = Default(Integer, 0)
    finalization_wait = Default(Integer, 30)
    user = String


class UpdateConfig(Struct):
    batch_size = Default(Integer, 1)
    restart_threshold = Default(Integer, 60)
    watch_secs = Default(Integer, 45)
    max_per_shard_failures = Default(Integer, 0)
    max_total_failures = Default(Integer, 0)
    rollback_on_failure = Default(Boolean, True)
    wait_for_batch_completion = Default(Boolean, False)


class HealthCheckConfig(Struct):
    initial_interval_secs = Default(Float, 15.0)
    interval_secs = Default(Float, 10.0)
    timeout_secs = Default(Float, 1.0)
    max_consecutive_failures = Default(Integer, 0)


class Announcer(Struct):
    primary_port = Default(String, 'http')
    portmap = Default(Map(String, String), {'aurora': '{{primary_port}}'})


class MesosJob(Struct):
    name = Default(String, '{{task.name}}')
    role = Required(String)
    contact = String
    cluster = Required(String)
    environment = Required(String)
    instances = Default(Integer, 1)
    task = Required(Task)
    announce = Announcer
    cron_schedule = String
    cron_collision_policy = Default(String, "KILL_EXISTING")
    update_config = Default(UpdateConfig, UpdateConfig())
    constraints = Map(String, String)
    service = Default(Boolean, False)
    max_task_failures = Default(Integer, 1)
    production = Default(Boolean, False)
    priority = Default(Integer, 0)
    health_check_config = Default(HealthCheckConfig, HealthCheckConfig())
    task_links = Map(String, String)
    enable_hooks = Default(Boolean, False)


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
