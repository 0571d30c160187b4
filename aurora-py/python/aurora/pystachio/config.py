"""Running configuration files: Python source executed into one shared namespace, with the
pystachio names preloaded and an ``include()`` for other files.

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
  """``include_path`` as seen from the file ``from_path`` (absolute paths stay as they are)."""
  return os.path.join(os.path.dirname(from_path), include_path)


def exec_function(ast, globals_map):
  """Runs compiled config code with ``globals_map`` as its namespace; returns the namespace."""
  globals_map.setdefault('__builtins__', _config_builtins())
  exec(ast, globals_map)
  return globals_map


class ConfigContext(object):
  """One load in progress: the namespace, the sources read so far, the files compiled."""

  ROOT = ''

  @classmethod
  def key(cls, from_path, include_string):
    """The ``loadables`` key of ``include(include_string)`` run from ``from_path``."""
    return '\0'.join((from_path, include_string))

  @classmethod
  def from_key(cls, key):
    return key.split('\0')

  def __init__(self, environment, loadables):
    self.environment = environment
    self.loadables = loadables
    self.files = []

  def compile(self, from_path, include_string, data, filename=None):
    """Records ``data`` as the source of that include and runs it in the namespace."""
    self.loadables[self.key(from_path, include_string)] = data
    filename = filename or relativize(from_path, include_string)
    self.files.append(filename)
    exec_function(compile(data, filename, 'exec'), self.environment)


def _invalid(error):
  return Config.InvalidConfigError(str(error))


class _Includes(object):
  """The ``include`` function of one load: a stack of the files being run."""

  def __init__(self, context, run_file):
    self._context = context
    self._run_file = run_file
    self._stack = []

  def run(self, from_path, include_string):
    self._stack.append(relativize(from_path, include_string))
    try:
      self._run_file(self._context, from_path, include_string)
    finally:
      self._stack.pop()

  def include(self, include_string):
    """Runs another config file, relative to the one running now."""
    self.run(self._stack[-1], include_string)


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


class FileExecutor(ConfigExecutor):
  """A path to a config file."""

  @classmethod
  def matches(cls, loadable):
    return isinstance(loadable, str) and os.path.isfile(loadable)

  @classmethod
  def compile_into(cls, context, from_path, config_file):
    path = relativize(from_path, config_file)
    with open(path) as fp:
      data = fp.read()
    context.compile(from_path, config_file, data, filename=path)

  @classmethod
  def get(cls, loadable):
    def run(config_file, context):
      includes = _Includes(context, cls.compile_into)
      context.environment['include'] = includes.include
      try:
        includes.run(cls.ROOT, config_file)
      except (SyntaxError, ValueError) as e:
        raise _invalid(e) from e
    return run, loadable


class ResourceExecutor(FileExecutor):
  """A resource of an importable package, named ``package/sub/resource``."""

  @classmethod
  def _resource(cls, loadable):
    package, resource = os.path.split(loadable)
    from importlib import resources
    return resources.files(package.replace(os.sep, '.')).joinpath(resource)

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

  @classmethod
  def compile_into(cls, context, from_path, config_file):
    path = relativize(from_path, config_file)
    data = cls._resource(path).read_bytes()
    context.compile(from_path, config_file, data, filename=path)


class LoadableMapExecutor(ConfigExecutor):
  """The ``loadables`` of an earlier load: replays it from the recorded sources."""

  @classmethod
  def matches(cls, loadable):
    return isinstance(loadable, dict)

  @classmethod
  def find_root_file(cls, loadable):
    for key in loadable:
      parts = ConfigContext.from_key(key)
      if len(parts) == 2 and parts[0] == cls.ROOT:
        return parts[1]
    return None

  @classmethod
  def from_filename(cls, stack):
    """The file currently running: the top of the include stack."""
    return stack[-1]

  @classmethod
  def get(cls, loadable):
    def compile_recorded(context, from_path, include_string):
      data = loadable[ConfigContext.key(from_path, include_string)]
      context.compile(from_path, include_string, data)

    def run(root_file, context):
      includes = _Includes(context, compile_recorded)
      context.environment['include'] = includes.include
      try:
        includes.run(cls.ROOT, root_file)
      except (SyntaxError, ValueError) as e:
        raise _invalid(e) from e
    return run, cls.find_root_file(loadable)


class FilelikeExecutor(ConfigExecutor):
  """An object with ``read()`` (a string or bytes source); it cannot include anything."""

  @classmethod
  def matches(cls, loadable):
    return hasattr(loadable, 'read')

  @classmethod
  def get(cls, loadable):
    def run(config, context):
      def include(include_string):
        raise Config.InvalidConfigError('You may not include() anything from filelike objects.')
      context.environment['include'] = include
      name = '<resource: %s>' % (config,)
      try:
        context.compile(cls.ROOT, name, config.read(), filename=name)
      except (SyntaxError, ValueError) as e:
        raise _invalid(e) from e
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
    """``(runner, root)`` of the first executor that recognises ``obj``."""
    for executor in cls.EXECUTORS:
      if executor.matches(obj):
        return executor.get(obj)
    raise cls.NotFound('Could not load resource %s' % (obj,))

  @classmethod
  def load_schema(cls, environment, schema=None):
    """Runs the schema source (the names every config starts with) in ``environment``."""
    exec_function(compile(schema or cls.DEFAULT_SCHEMA, '<schema>', 'exec'), environment)

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
