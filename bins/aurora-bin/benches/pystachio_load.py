"""The reference side of the `load` benchmark: loads, validates and converts every job of a
`.aurora` file with the real pystachio 0.8.10 and an equivalent Python version of the Aurora
0.6 schema (what `aurora validate FILE` does with the Rust engine).

Usage: python pystachio_load.py FILE
"""
import json
import sys
from pathlib import Path

from pystachio import Empty, Environment
from pystachio.config import Config

# The schema is shared with aurora-config's benchmark; it runs in each config's namespace.
SCHEMA = (Path(__file__).resolve().parents[3] / 'aurora-config' / 'benches'
          / 'reference_schema.py').read_text()

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
