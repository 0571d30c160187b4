"""Running configuration files, as pystachio 0.8.10's ``config`` module: Python source
executed into one shared namespace, with the pystachio names preloaded and an ``include()``
for other files. (Configs are Python, so this part is Python; the values they build live in
the Rust engine.)

A config can come from a file path (``include`` paths are relative to the including file), a
package resource (``package/sub/file``), a file-like object (no ``include``), or the
``loadables`` map a previous load recorded (``{from + NUL + include: source}``), which replays
it without touching the disk.

Differences from pystachio, on purpose: ``import pystachio`` inside a config gives this
package; code is compiled under the path it was read from, so tracebacks and syntax errors
name the real file (``ConfigContext.files`` lists them for error reporting); resources are
read with ``importlib.resources``."""
import builtins
import importlib
import os
import sys

_ALIAS = 'pystachio'
_PACKAGE = __name__.rpartition('.')[0]


def _aliasing_import(name, globals=None, locals=None, fromlist=(), level=0):
  """``__import__`` for configs: ``pystachio[.x]`` resolves to this package."""
  if level == 0 and (name == _ALIAS or name.startswith(_ALIAS + '.')):
    target = _PACKAGE + name[len(_ALIAS):]
    if fromlist:
      return builtins.__import__(target, globals, locals, fromlist, 0)
    importlib.import_module(target)
    return sys.modules[_PACKAGE]
  return builtins.__import__(name, globals, locals, fromlist, level)


def _config_builtins():
  table = dict(vars(builtins))
  table['__import__'] = _aliasing_import
  return table


def relativize(from_path, include_path):
  """``include_path`` as seen from the file ``from_path``: absolute paths stay as they are,
  relative ones are read in the directory of ``from_path``."""
  if os.path.isabs(include_path):
    return include_path
  return from_path[:from_path.rfind(os.sep) + 1] + include_path


def exec_function(ast, globals_map):
  """Runs compiled config code with ``globals_map`` as its namespace; returns the namespace."""
  globals_map.setdefault('__builtins__', _config_builtins())
  exec(ast, globals_map)
  return globals_map


_SEPARATOR = '\0'


class ConfigContext(object):
  """One load in progress: the namespace, the sources read so far (``loadables``, keyed by
  ``key(from_path, include_string)``), and the files compiled, in order."""

  ROOT = ''

  @classmethod
  def key(cls, from_path, include_string):
    """The ``loadables`` key of ``include(include_string)`` run from ``from_path``."""
    return _SEPARATOR.join([from_path, include_string])

  @classmethod
  def from_key(cls, key):
    """The ``(from_path, include_string)`` parts of a key (one part if it has none)."""
    return key.split(_SEPARATOR)

  def __init__(self, environment, loadables):
    self.environment = environment
    self.loadables = loadables
    self.files = []

  def compile(self, from_path, include_string, data, filename=None):
    """Records ``data`` as the source of that include and runs it in the namespace."""
    self.loadables[self.key(from_path, include_string)] = data
    where = filename or relativize(from_path, include_string)
    self.files.append(where)
    exec_function(compile(data, where, 'exec'), self.environment)


class _Session(object):
  """Runs a root config and what it includes: ``read(from_path, include_string)`` returns
  ``(source, filename)`` for one file, and ``include()`` inside a file reads relative to that
  file. A SyntaxError or ValueError anywhere fails the load with InvalidConfigError."""

  def __init__(self, context, read):
    self._context = context
    self._read = read
    self._running = []

  def _run(self, from_path, include_string):
    self._running.append(relativize(from_path, include_string))
    try:
      data, filename = self._read(from_path, include_string)
      self._context.compile(from_path, include_string, data, filename=filename)
    finally:
      self._running.pop()

  def include(self, include_string):
    """Runs another config file, relative to the one running now."""
    self._run(self._running[-1], include_string)

  def start(self, root, include=None):
    self._context.environment['include'] = include or self.include
    try:
      self._run(ConfigContext.ROOT, root)
    except (SyntaxError, ValueError) as e:
      raise Config.InvalidConfigError(str(e)) from e


class ConfigExecutor(object):
  """One kind of loadable: ``matches`` recognises it, ``get`` returns ``(runner, root)``
  where ``runner(root, context)`` runs it."""

  ROOT = ConfigContext.ROOT

  @classmethod
  def matches(cls, loadable):
    return False

  @classmethod
  def get(cls, loadable):
    raise NotImplementedError


def _session_runner(read):
  """The ``runner(root, context)`` of an executor whose files ``read`` returns."""
  return lambda root, context: _Session(context, read).start(root)


class FileExecutor(ConfigExecutor):
  """A path to a config file."""

  @classmethod
  def _source(cls, from_path, config_file):
    path = relativize(from_path, config_file)
    with open(path) as fp:
      return fp.read(), path

  @classmethod
  def matches(cls, loadable):
    return isinstance(loadable, str) and os.path.isfile(loadable)

  @classmethod
  def compile_into(cls, context, from_path, config_file):
    """Reads one file and runs it in ``context``."""
    data, path = cls._source(from_path, config_file)
    context.compile(from_path, config_file, data, filename=path)

  @classmethod
  def get(cls, loadable):
    return _session_runner(cls._source), loadable


class ResourceExecutor(FileExecutor):
  """A resource of an importable package, named ``package/sub/resource``."""

  @classmethod
  def _resource(cls, loadable):
    package, resource = os.path.split(loadable)
    from importlib import resources
    return resources.files(package.replace(os.sep, '.')).joinpath(resource)

  @classmethod
  def _source(cls, from_path, config_file):
    path = relativize(from_path, config_file)
    return cls._resource(path).read_bytes(), path

  @classmethod
  def resource_exists(cls, loadable):
    package, _ = os.path.split(loadable)
    if not package:
      return False
    try:
      return cls._resource(loadable).is_file()
    except Exception:
      return False

  @classmethod
  def matches(cls, loadable):
    return isinstance(loadable, str) and cls.resource_exists(loadable)


class LoadableMapExecutor(ConfigExecutor):
  """The ``loadables`` of an earlier load: replays it from the recorded sources."""

  @classmethod
  def matches(cls, loadable):
    return isinstance(loadable, dict)

  @classmethod
  def find_root_file(cls, loadable):
    """The file the recorded load started from (the include of the root), or None."""
    roots = (parts[1] for parts in map(ConfigContext.from_key, loadable)
             if len(parts) == 2 and parts[0] == cls.ROOT)
    return next(roots, None)

  @classmethod
  def from_filename(cls, stack):
    """The file currently running: the top of the include stack."""
    return stack[-1]

  @classmethod
  def get(cls, loadable):
    def recorded(from_path, include_string):
      return loadable[ConfigContext.key(from_path, include_string)], None
    return _session_runner(recorded), cls.find_root_file(loadable)


class FilelikeExecutor(ConfigExecutor):
  """An object with ``read()`` (a string or bytes source); it cannot include anything."""

  @classmethod
  def matches(cls, loadable):
    return hasattr(loadable, 'read')

  @classmethod
  def get(cls, loadable):
    name = '<resource: %s>' % (loadable,)

    def no_include(include_string):
      raise Config.InvalidConfigError('You may not include() anything from filelike objects.')

    def run(config, context):
      _Session(context, lambda _, __: (config.read(), name)).start(name, include=no_include)
    return run, loadable


class Config(object):
  """Loads a config (path, resource, file-like object or recorded ``loadables``) into
  ``environment``, after running ``schema`` (by default ``DEFAULT_SCHEMA``) there."""

  class Error(Exception):
    """Base class of config errors."""

  class InvalidConfigError(Error):
    """The config does not compile, or raised a ValueError while running."""

  class NotFound(Error):
    """No executor recognises the loadable."""

  DEFAULT_SCHEMA = 'from pystachio import *'
  EXECUTORS = [FileExecutor, ResourceExecutor, FilelikeExecutor, LoadableMapExecutor]
  ROOT = None

  @classmethod
  def choose_executor(cls, obj):
    """``(runner, root)`` from the first of ``EXECUTORS`` that recognises ``obj``."""
    executor = next((e for e in cls.EXECUTORS if e.matches(obj)), None)
    if executor is None:
      raise cls.NotFound('Could not load resource %s' % (obj,))
    return executor.get(obj)

  @classmethod
  def load_schema(cls, environment, schema=None):
    """Runs the schema source (the names every config starts with) in ``environment``."""
    source = cls.DEFAULT_SCHEMA if not schema else schema
    exec_function(compile(source, '<schema>', 'exec'), environment)

  def __init__(self, loadable, schema=None):
    self._environment = {}
    self._loadables = {}
    # Set before anything runs: on failure, callers read the files compiled so far.
    self._context = ConfigContext(self._environment, self._loadables)
    runner, root = self.choose_executor(loadable)
    self.load_schema(self._environment, schema)
    runner(root, self._context)

  @property
  def loadables(self):
    return self._loadables

  @property
  def environment(self):
    return self._environment
