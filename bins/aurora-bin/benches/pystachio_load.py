"""The reference side of the `load` benchmark: loads, validates and converts every job of a
`.aurora` file with the real pystachio 0.8.10 and an equivalent Python version of the Aurora
0.6 schema (what `aurora validate FILE` does with the Rust engine).

Usage: python pystachio_load.py FILE
"""
import json
import sys

from pystachio import Empty, Environment
from pystachio.config import Config

SCHEMA = '''
from pystachio import *

BYTES = 1
KB = 1024 * BYTES
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB

class ThermosContext(Struct):
  ports = Map(String, Integer)
  task_id = String
  user = String

class MesosContext(Struct):
  instance = Required(Integer)

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

Job = MesosJob
Service = Job(service = True)

def order(*items):
  return [Constraint(order = [str(i.name()) if isinstance(i, Process) else i for i in items])]

def SequentialTask(*args, **kw):
  task = Task(*args, **kw)
  if task.constraints().get():
    raise ValueError('Cannot specify both constraints and processes in SequentialTask')
  return task(constraints = order(*list(task.processes())))
'''

ALLOWED = ('{{mesos.instance}}', '{{thermos.task_id}}')


def convert(job):
  job = job.bind(Environment({'mesos.role': '{{role}}', 'mesos.cluster': '{{cluster}}',
                              'thermos.user': '{{role}}'}))
  check = job.bind(Environment({'mesos.instance': 0})).check()
  if not check.ok():
    raise ValueError(check.message())
  interpolated, unbound = job.interpolate()
  bad = [str(r) for r in unbound
         if str(r) not in ALLOWED and not str(r).startswith('{{thermos.ports[')]
  if bad:
    raise ValueError('Config contains unbound variables: %s' % ' '.join(bad))
  raw = json.loads(interpolated.json_dumps())
  for part in ('role', 'environment', 'name'):
    if not raw[part].replace('-', '').replace('_', '').replace('.', '').isalnum():
      raise ValueError('invalid %s' % part)
  uc, hc = raw['update_config'], raw['health_check_config']
  if uc['max_total_failures'] >= raw['instances']:
    raise ValueError('max_total_failures')
  if uc['watch_secs'] <= hc['initial_interval_secs'] + hc['max_consecutive_failures'] * hc['interval_secs']:
    raise ValueError('watch_secs')
  data = job(update_config=Empty, instances=Empty).json_dumps()
  res = raw['task']['resources']
  ports = sorted(set(str(r)[len('{{thermos.ports['):-3] for r in unbound
                     if str(r).startswith('{{thermos.ports[')))
  return {
    'key': {'role': raw['role'], 'environment': raw['environment'], 'name': raw['name']},
    'owner': {'role': raw['role'], 'user': 'bench'},
    'instanceCount': raw['instances'],
    'taskConfig': {
      'numCpus': res['cpu'], 'ramMb': res['ram'] // (1024 * 1024),
      'diskMb': res['disk'] // (1024 * 1024), 'requestedPorts': ports,
      'isService': raw['service'], 'executorConfig': {'name': 'AuroraExecutor', 'data': data},
    },
  }


def main(path):
  env = Config(path, schema=SCHEMA).environment
  jobs = env['jobs']
  for job in jobs:
    converted = convert(job)
    print('%s/%s/%s/%s: OK (%d instance(s))' % (
        job.cluster(), converted['key']['role'], converted['key']['environment'],
        converted['key']['name'], converted['instanceCount']))


if __name__ == '__main__':
  main(sys.argv[1])
