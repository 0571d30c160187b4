"""The Aurora 0.6 schema written for the real pystachio 0.8.10: the reference both Python
sides of our benchmarks (aurora-config's `pystachio` bench and aurora-bin's `load` bench) run
against, so that they measure the same schema our Rust engine carries."""
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
