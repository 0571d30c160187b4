"""The `.aurora` loader from Python: injected names, include, bindings, errors, hooks."""
import textwrap

import pytest

from aurora.config import loader
from aurora.config.schema import Job, Process, Resources, SimpleTask, Task, order, MB


def write(tmp_path, name, text):
  path = tmp_path / name
  path.write_text(textwrap.dedent(text))
  return str(path)


HELLO = '''
    include('lib/profile.aurora')
    hello = Process(name = 'hello', cmdline = 'echo {{greeting}} from {{profile.name}}')
    jobs = [Job(
      cluster = 'devcluster', role = 'www-data', environment = 'prod', name = 'hello',
      task = SequentialTask(processes = [hello],
                            resources = Resources(cpu = 1.0, ram = 64 * MB, disk = 64 * MB)),
    ).bind(profile = PROFILE)]
'''

PROFILE = '''
    from pystachio import *
    import pystachio
    assert pystachio.String is String
    include('more.aurora')
    class Profile(Struct):
      name = Default(String, NAME)
    PROFILE = Profile()
'''


def test_include_is_relative_and_nested_and_bindings_apply(tmp_path):
  (tmp_path / 'lib').mkdir()
  write(tmp_path, 'lib/more.aurora', "NAME = 'nested'\n")
  write(tmp_path, 'lib/profile.aurora', PROFILE)
  path = write(tmp_path, 'hello.aurora', HELLO)
  config = loader.load(path)
  assert len(config.jobs) == 1 and config.hooks == []
  key, raw = loader.evaluate(config.jobs[0], ['greeting=hi'])
  assert key == 'devcluster/www-data/prod/hello'
  assert raw['task']['processes'][0]['cmdline'] == 'echo hi from nested'
  assert raw['task']['constraints'] == [{'order': ['hello']}]
  with pytest.raises(ValueError, match='unbound variables: {{greeting}}'):
    loader.evaluate(config.jobs[0])


def test_errors_name_file_and_line(tmp_path):
  write(tmp_path, 'bad.aurora', 'x = 1\nProcess(bogus = 1)\n')
  path = write(tmp_path, 'main.aurora', "include('bad.aurora')\n")
  with pytest.raises(loader.ConfigError) as e:
    loader.load(path)
  assert e.value.kind == 'AttributeError'
  assert e.value.message == 'Unknown schema attribute bogus'
  assert e.value.filename.endswith('bad.aurora') and e.value.lineno == 2

  path = write(tmp_path, 'syntax.aurora', "jobs = [\n  Job(name = 'x' role = 'y')]\n")
  with pytest.raises(loader.ConfigError) as e:
    loader.load(path)
  assert e.value.kind == 'InvalidConfigError' and e.value.lineno == 2

  path = write(tmp_path, 'empty.aurora', "x = 1\n")
  with pytest.raises(loader.ConfigError, match='No job defined in this config!'):
    loader.load(path)


def test_hook_objects_are_kept(tmp_path):
  path = write(tmp_path, 'hooks.aurora', '''
      class Stop(object):
        def pre_kill_job(self, job_key, instances=None, lock=None, config=None):
          return False
      jobs = [Job(cluster = 'c', role = 'r', environment = 'prod', name = 'x',
                  task = SimpleTask('x', 'true'), enable_hooks = True)]
      hooks = [Stop()]
  ''')
  config = loader.load(path)
  assert type(config.hooks[0]).__name__ == 'Stop'
  assert config.hooks[0].pre_kill_job('c/r/prod/x') is False
  aurora_config = loader.AuroraConfig(config.jobs[0], config.hooks)
  assert aurora_config.job_key() == 'c/r/prod/x'
  assert aurora_config.raw().enable_hooks().get() is True
  hook_config = loader.HookConfig(aurora_config, 'c/r/prod/x')
  config_again, job_key = hook_config
  assert config_again is aurora_config and job_key == 'c/r/prod/x'


def test_schema_objects_and_helpers():
  p = Process(name = 'a', cmdline = 'echo {{name}}')
  assert str(p.cmdline()) == 'echo a'
  assert repr(order(p, 'b')) == "[Constraint(order=StringList(a, b))]"
  task = Task(processes = [p], resources = Resources(cpu = 1, ram = 1, disk = 1))
  assert str(task.name()) == 'a'
  with pytest.raises(AttributeError, match='Unknown schema attribute tier'):
    Job(tier = 'preferred')
  assert Job().check().message() == 'MesosJob[role] is required.'
