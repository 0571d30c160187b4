"""The `.aurora` loader: runs a config file (Python) with pystachio and the Aurora schema
injected, `include()` relative to the including file, then reads `jobs` and `hooks`.

The `aurora` binary runs this same code in its embedded interpreter."""
from ..pystachio.config import Config
from .. import _native

__all__ = ['AuroraConfig', 'AuroraConfigLoader', 'ConfigError', 'LoadedConfig', 'evaluate', 'load']


class ConfigError(Exception):
  """A config that cannot be loaded: `kind` is the original exception class name (or
  `NoJobs`), `filename`/`lineno` where it happened (when known)."""

  def __init__(self, kind, message, filename, lineno):
    Exception.__init__(self, message)
    self.kind = kind
    self.message = message
    self.filename = filename
    self.lineno = lineno

  def __str__(self):
    where = self.filename or '<config>'
    if self.lineno:
      where = '%s:%d' % (where, self.lineno)
    return '%s: %s: %s' % (where, self.kind, self.message)


class AuroraConfigLoader(Config):
  """A pystachio `Config` with the Aurora schema injected."""
  DEFAULT_SCHEMA = 'from pystachio import *\nfrom aurora.config.schema import *'


class LoadedConfig(object):
  """What a config file defines: its jobs, its hooks and its whole namespace."""

  def __init__(self, path, jobs, hooks, environment):
    self.path = path
    self.jobs = jobs
    self.hooks = hooks
    self.environment = environment


def _locate(exc, files, default_file):
  """The innermost config file and line an exception comes from."""
  import traceback  # only failures need it, and it is slow to import
  cause = exc
  while cause is not None:
    if isinstance(cause, SyntaxError) and cause.filename:
      return cause.filename, cause.lineno
    cause = cause.__cause__
  filename, lineno = default_file, None
  for frame, line in traceback.walk_tb(exc.__traceback__):
    if frame.f_code.co_filename in files:
      filename, lineno = frame.f_code.co_filename, line
  cause = exc.__cause__
  if lineno is None and cause is not None:
    for frame, line in traceback.walk_tb(cause.__traceback__):
      if frame.f_code.co_filename in files:
        filename, lineno = frame.f_code.co_filename, line
  return filename, lineno


def load(path):
  """Loads a `.aurora` file. Raises `ConfigError` naming the file and line on failure."""
  config = AuroraConfigLoader.__new__(AuroraConfigLoader)
  try:
    config.__init__(path)
  except Exception as e:
    context = getattr(config, '_context', None)
    files = set(context.files) if context is not None else set()
    files.add(path)
    filename, lineno = _locate(e, files, path)
    kind = type(e).__name__
    message = str(e)
    if kind == 'NotFound':
      kind = 'FileNotFoundError'
    raise ConfigError(kind, message, filename, lineno) from e
  env = config.environment
  jobs = env.get('jobs')
  if not jobs:
    raise ConfigError('NoJobs', 'No job defined in this config!', path, None)
  try:
    jobs = list(jobs)
  except TypeError:
    raise ConfigError('TypeError', '`jobs` must be a list of Job objects', path, None)
  for job in jobs:
    if not hasattr(job, '_v'):
      raise ConfigError('TypeError', '`jobs` holds %r, which is not a Job' % (job,), path, None)
  hooks = env.get('hooks', [])
  return LoadedConfig(path, jobs, list(hooks) if hooks else [], env)


def evaluate(job, bindings=()):
  """Evaluates a job as `aurora create` would: applies `NAME=VALUE` bindings, validates,
  interpolates. Returns `(job_key, raw_json)` or raises `ValueError` listing every problem."""
  import json
  key, raw, problems = _native.evaluate_job(job._v, list(bindings))
  if problems:
    raise ValueError('\n'.join('%s: %s' % (p, m) if p else m for p, m in problems))
  return key, json.loads(raw)


class AuroraConfig(object):
  """What hooks receive as `config`: the selected job, as the original client's
  `AuroraConfig` exposed it (`raw()`, `job_key()`, `name()`, ...)."""

  def __init__(self, job, hooks=()):
    self._job = job
    self.hooks = list(hooks)

  def raw(self):
    return self._job

  def job(self):
    return self._job

  def _text(self, field):
    value = getattr(self._job, field)()
    return None if value is _empty() else str(value)

  def name(self):
    return self._text('name')

  def role(self):
    return self._text('role')

  def cluster(self):
    return self._text('cluster')

  def environment(self):
    return self._text('environment')

  def instances(self):
    return self._job.instances().get()

  def job_key(self):
    return '/'.join(str(p) for p in (self.cluster(), self.role(), self.environment(), self.name()))

  def __repr__(self):
    return 'AuroraConfig(%s)' % self.job_key()


class HookConfig(tuple):
  """`generic_hook`'s first argument: iterates as `(config, job_key)`."""

  def __new__(cls, config, job_key):
    return tuple.__new__(cls, (config, job_key))

  @property
  def config(self):
    return self[0]

  @property
  def job_key(self):
    return self[1]


def _empty():
  from ..pystachio import Empty
  return Empty
