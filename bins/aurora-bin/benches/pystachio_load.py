"""The pystachio 0.8.10 side of the `load` benchmark (load.rs beside this file): loads every job
of a `.aurora` file, validates and converts it as `aurora validate FILE` does, and prints one line
per job in the same form.

Usage: python pystachio_load.py SCHEMA_PY CONFIG [--json KEY...]

SCHEMA_PY is the schema rendered from the Rust schema (aurora_config::schema::pystachio_source);
the helpers a config calls (`SequentialTask`, `order`) are added here, since they are functions,
not schema. With `--json`, prints instead one JSON object mapping each given job key
(cluster/role/environment/name) to the job interpolated in Aurora's context, the JSON
`aurora inspect --write-json KEY CONFIG` prints.
"""
import json
import re
import sys

from pystachio import Empty, Environment
from pystachio.config import Config

# Written for this benchmark from what the helpers do: `order` builds one constraint listing
# process names; `SequentialTask` orders a task's processes as listed.
HELPERS = '''
def order(*items):
  names = [item.name() if isinstance(item, Process) else item for item in items]
  return [Constraint(order=names)]


def SequentialTask(**fields):
  task = Task(**fields)
  if task.constraints().get():
    raise ValueError('Cannot specify both constraints and processes in SequentialTask')
  return task(constraints=order(*task.processes()))
'''

ALLOWED = re.compile(r'^(mesos\.instance|thermos\.task_id|thermos\.ports\[[^\]]+\])$')
PORT = re.compile(r'^thermos\.ports\[([^\]]+)\]$')
KEY_PART = re.compile(r'^[\w\-.]+$')


def in_context(job):
  """The job interpolated in Aurora's context: the deprecated `mesos.role`, `mesos.cluster` and
  `thermos.user` aliases bound."""
  aliases = Environment({'mesos.role': '{{role}}', 'mesos.cluster': '{{cluster}}',
                         'thermos.user': '{{role}}'})
  return job.bind(aliases).interpolate()[0]


def convert(job):
  job = in_context(job)
  check = job.bind(Environment({'mesos.instance': 0})).check()
  if not check.ok():
    raise ValueError(check.message())
  _, unbound = job.interpolate()
  bad = [str(r) for r in unbound if not ALLOWED.match(r.address())]
  if bad:
    raise ValueError('Config contains unbound variables: %s' % ' '.join(bad))
  raw = json.loads(job.json_dumps())
  for part in ('role', 'environment', 'name'):
    if not KEY_PART.match(raw[part]):
      raise ValueError('invalid %s %r' % (part, raw[part]))
  updates, health = raw['update_config'], raw['health_check_config']
  if updates['max_total_failures'] >= raw['instances']:
    raise ValueError('max_total_failures must be lower than instances')
  slowest = (health['initial_interval_secs']
             + health['max_consecutive_failures'] * health['interval_secs'])
  if updates['watch_secs'] <= slowest:
    raise ValueError('watch_secs must exceed the slowest health check')
  resources = raw['task']['resources']
  ports = sorted({PORT.match(r.address()).group(1) for r in unbound if PORT.match(r.address())})
  return {
    'key': '/'.join((raw['cluster'], raw['role'], raw['environment'], raw['name'])),
    'instances': raw['instances'],
    'cpus': resources['cpu'],
    'ram_mb': resources['ram'] // (1024 * 1024),
    'disk_mb': resources['disk'] // (1024 * 1024),
    'ports': ports,
    'service': raw['service'],
    'data': job(update_config=Empty, instances=Empty).json_dumps(),
  }


def main(argv):
  schema_path, config = argv[1], argv[2]
  with open(schema_path) as f:
    schema = f.read() + HELPERS
  jobs = Config(config, schema=schema).environment['jobs']
  if argv[3:4] == ['--json']:
    wanted = set(argv[4:])
    out = {}
    for job in jobs:
      raw = json.loads(in_context(job).json_dumps())
      key = '/'.join((raw['cluster'], raw['role'], raw['environment'], raw['name']))
      if key in wanted:
        out[key] = raw
    sys.stdout.write(json.dumps(out) + '\n')
    return
  for job in jobs:
    converted = convert(job)
    print('%s: OK (%d instance(s))' % (converted['key'], converted['instances']))


if __name__ == '__main__':
  main(sys.argv)
