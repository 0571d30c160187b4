"""The Aurora 0.6 / Thermos schema as pystachio classes, backed by the Rust schema of
aurora-config, with the helpers `.aurora` files use. `from aurora.config.schema import *`
gives what the original loader injected into every config."""
from .. import _native
from ..pystachio import Empty
from ..pystachio.base import _class_for, _wrap

__all__ = [
    'Announcer', 'BYTES', 'Constraint', 'GB', 'HealthCheckConfig', 'Job', 'KB', 'MB',
    'MesosContext', 'MesosJob', 'MesosTaskInstance', 'Options', 'Process', 'Processes',
    'Resources', 'SequentialTask', 'Service', 'SimpleTask', 'TB', 'Task', 'Tasks',
    'ThermosContext', 'Units', 'UpdateConfig', 'combine_tasks', 'concat_tasks',
    'java_options', 'order', 'python_options',
]

BYTES = 1
KB = 1024 * BYTES
MB = 1024 * KB
GB = 1024 * MB
TB = 1024 * GB

_TYPES = dict(_native.schema_types())

ThermosContext = _class_for(_TYPES['ThermosContext'])
MesosContext = _class_for(_TYPES['MesosContext'])
Resources = _class_for(_TYPES['Resources'])
Constraint = _class_for(_TYPES['Constraint'])
Process = _class_for(_TYPES['Process'])
Task = _class_for(_TYPES['Task'])
UpdateConfig = _class_for(_TYPES['UpdateConfig'])
HealthCheckConfig = _class_for(_TYPES['HealthCheckConfig'])
Announcer = _class_for(_TYPES['Announcer'])
MesosTaskInstance = _class_for(_TYPES['MesosTaskInstance'])
MesosJob = _class_for(_TYPES['MesosJob'])
Job = MesosJob
Service = _wrap(_native.service())


def order(*items):
  """`order(*processes_or_names)`: one ordering constraint, in a list so results concatenate."""
  return [_wrap(c) for c in _native.order(list(items))]


def SimpleTask(name, command):
  """A task of one process `name` running `command`, with 1 cpu, 1 GB ram and 1 GB disk."""
  return _wrap(_native.simple_task(str(name), str(command)))


def SequentialTask(*args, **kw):
  """A task whose processes run one after another, in the order given."""
  task = Task(*args, **kw)
  return _wrap(_native.sequential_task(task._v))


def combine_tasks(*tasks, **kw):
  """Tasks whose processes run in parallel: resources summed, the last task is the base."""
  if not tasks:
    return Task()
  return _wrap(_native.combine_tasks(list(tasks), kw))


def concat_tasks(*tasks, **kw):
  """Tasks that run one after another: resources are the maximum, waits add up."""
  if not tasks:
    return Task()
  return _wrap(_native.concat_tasks(list(tasks), kw))


class Units(object):
  """Resource arithmetic of the task helpers, done by the engine's task merging: what
  ``combine_tasks`` adds up and what ``concat_tasks`` takes the maximum of (or adds up, for
  finalization waits)."""

  @classmethod
  def optional_resources(cls, resources):
    """``resources``, or zero resources for Empty."""
    return Resources(cpu=0, ram=0, disk=0) if resources is Empty else resources

  @classmethod
  def resources_sum(cls, *resources):
    """Resources of tasks running side by side."""
    return _merged(_native.combine_tasks, [
        Task(resources=cls.optional_resources(r)) for r in resources]).resources()

  @classmethod
  def resources_max(cls, resources):
    """Resources of tasks running one after another."""
    return _merged(_native.concat_tasks, [
        Task(resources=cls.optional_resources(r)) for r in resources]).resources()

  @classmethod
  def finalization_wait_sum(cls, waits):
    """The finalization wait of tasks running one after another."""
    return _merged(_native.concat_tasks, [
        Task(finalization_wait=w) for w in waits]).finalization_wait().get()

  @classmethod
  def finalization_wait_max(cls, waits):
    """The finalization wait of tasks running side by side."""
    return _merged(_native.combine_tasks, [
        Task(finalization_wait=w) for w in waits]).finalization_wait().get()

  @classmethod
  def processes_merge(cls, tasks):
    """The processes of ``tasks``, each once, in order."""
    return list(_merged(_native.combine_tasks, list(tasks)).processes() or [])


def _merged(merge, tasks):
  """One task merged from ``tasks`` by the engine (a task of zero resources when empty)."""
  if not tasks:
    tasks = [Task(resources=Resources(cpu=0, ram=0, disk=0), finalization_wait=0)]
  return _wrap(merge(tasks, {}))


class Processes(object):
  """`Processes.order`."""
  order = staticmethod(order)


class Tasks(object):
  """`Tasks.simple`, `Tasks.sequential`, `Tasks.combine` and `Tasks.concat`."""
  simple = staticmethod(SimpleTask)
  sequential = staticmethod(SequentialTask)
  combine = staticmethod(combine_tasks)
  concat = staticmethod(concat_tasks)


def _named_options(options, kw_options):
  """``(name, value)`` pairs of option arguments, in order: a string is a bare flag, a dict
  gives several named values, keywords come last; other arguments are ignored."""
  for option in options:
    if isinstance(option, str):
      yield option, None
    elif isinstance(option, dict):
      for pair in option.items():
        yield pair
  for pair in kw_options.items():
    yield pair


class Options(object):
  """Command lines built from option names and values: ``Options.java('a', b=23)`` gives
  ``-a -b 23``; ``Options.python`` spells one-letter names ``-a`` and longer ones ``--boo``."""

  @staticmethod
  def render_option(short_prefix, long_prefix, option, value=None):
    """``option`` behind ``short_prefix`` when it is one letter long, ``long_prefix``
    otherwise, then its value after a space; an empty value (None, '', 0) is left out."""
    flag = '{}{}'.format(long_prefix if len(option) != 1 else short_prefix, option)
    return '{} {}'.format(flag, value) if value else flag

  @staticmethod
  def render_options(short_prefix, long_prefix, *options, **kw_options):
    """Every option of ``_named_options`` rendered, separated by spaces."""
    return ' '.join(Options.render_option(short_prefix, long_prefix, name, value)
                    for name, value in _named_options(options, kw_options))

  @staticmethod
  def java(*options, **kw_options):
    """Java style: ``-name value`` whatever the length of the name."""
    return Options.render_options('-', '-', *options, **kw_options)

  @staticmethod
  def python(*options, **kw_options):
    """Python style: ``-a`` for one letter, ``--name`` otherwise."""
    return Options.render_options('-', '--', *options, **kw_options)


java_options = Options.java
python_options = Options.python
