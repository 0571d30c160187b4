"""Environments and the Object base class. Values live in the Rust engine: an Object is a thin
handle (``_v``) on a native value, and every method delegates to it."""
from pprint import pformat

from .. import _native
from .naming import Namable, Ref
from .parsing import MustacheParser
from .typing import TypeCheck


class Environment(Namable):
  """Named values that templates can refer to: a flat table from Ref to an Object or a
  string. Nested dicts are flattened into longer Refs as they are added, and the engine
  gets its own copy of the table the first time a bind needs it."""
  __slots__ = ('_table', '_native_env')

  @staticmethod
  def wrap(value):
    """Normalises one entry: dicts become Environments, numbers become strings, and
    strings, Objects and Environments are kept."""
    if isinstance(value, dict):
      return Environment(value)
    if isinstance(value, (Environment, Object)):
      return value
    if isinstance(value, (int, float, str)):
      return str(value)
    raise ValueError(
      'Environment values must be strings, numbers, Objects or other Environments. '
      'Got %s instead.' % type(value))

  def _add_mapping(self, mapping):
    for name, value in mapping.items():
      value = Environment.wrap(value)
      prefix = Ref.wrap(name)
      if isinstance(value, Environment):
        self._table.update((prefix + ref, entry) for ref, entry in value._table.items())
      else:
        self._table[prefix] = value

  def __init__(self, *dicts, **kw):
    self._table = {}
    self._native_env = None
    for source in dicts + (kw,):
      if isinstance(source, dict):
        self._add_mapping(source)
      elif isinstance(source, Environment):
        self._table.update(source._table)
      else:
        raise ValueError("Environment expects dict or Environment, got %s" % repr(source))

  def _native(self):
    if self._native_env is None:
      self._native_env = _native.Env([
          (ref.address(), entry._v if isinstance(entry, Object) else entry)
          for ref, entry in self._table.items()])
    return self._native_env

  def find(self, ref):
    """An exact entry if there is one; otherwise ask the Namables mounted at a prefix of
    `ref`, longest prefix first, for the rest of it."""
    if ref in self._table:
      return self._table[ref]
    prefixes = sorted((key for key in self._table if Ref.subscope(key, ref)), reverse=True)
    for prefix in prefixes:
      mounted = self._table[prefix]
      if not isinstance(mounted, Namable):
        continue
      try:
        return mounted.find(Ref.subscope(prefix, ref))
      except Namable.Error:
        pass
    raise Namable.NotFound(self, ref)

  def __repr__(self):
    return 'Environment(%s)' % pformat(self._table)


# Classes for native types, by serialized signature (structurally equal types share one).
_CLASSES = {}


def _class_for(ntype):
  """The Python class of a native type, created on first use."""
  key = ntype.key
  cls = _CLASSES.get(key)
  if cls is not None:
    return cls
  from . import basic, choice, composite, container
  from .typing import TypeMetaclass
  factory = ntype.factory
  if factory in ('String', 'Integer', 'Float', 'Boolean'):
    cls = getattr(basic, factory)
  elif factory == 'Enum':
    cls = TypeMetaclass(ntype.name, (basic.EnumContainer,), {
        '__slots__': (), '_T': ntype, 'VALUES': tuple(ntype.enum_values())})
  elif factory == 'List':
    cls = container._list_class(_class_for(ntype.element()), ntype)
  elif factory == 'Map':
    key, value = ntype.key_value()
    cls = container._map_class(_class_for(key), _class_for(value), ntype)
  elif factory == 'Choice':
    alts = [_class_for(a) for a in ntype.alternatives()]
    cls = TypeMetaclass(ntype.name, (choice.ChoiceContainer,), {
        '__slots__': (), '_T': ntype, 'CHOICES': alts,
        'TYPE_PARAMETERS': (ntype.name, tuple(a.serialize_type() for a in alts))})
  else:
    cls = composite._struct_class(ntype, {})
  _CLASSES[key] = cls
  return cls


def _wrap(nvalue):
  """A Python handle on a native value, of the class of its type."""
  cls = _CLASSES.get(nvalue.type_key)
  if cls is None:
    cls = _class_for(nvalue.ty)
  obj = object.__new__(cls)
  obj._v = nvalue
  return obj


def _find(obj, ref):
  """`find` of a struct, list or map: the engine's lookup, which places what it finds in the
  scopes it would be evaluated in without interpolating it; failures become the Namable
  errors (or the IndexError of a negative index before the start) pystachio raises."""
  found = obj._v.find(ref.address())
  if not isinstance(found, tuple):
    return _wrap(found)
  kind, message = found
  if kind == 'index':
    raise IndexError(message)
  error_class = {'naming': Namable.NamingError, 'not_found': Namable.NotFound,
                 'unnamable': Namable.Unnamable}[kind]
  error = error_class.__new__(error_class)
  Exception.__init__(error, message)
  raise error


def _environment_from_native(env, entries):
  """An Environment for an engine environment listed by `scopes()`: the same table, keyed by
  Refs, with the engine's copy already attached."""
  environment = Environment.__new__(Environment)
  environment._table = {Ref.from_address(address): (value if isinstance(value, str) else _wrap(value))
                        for address, value in entries}
  environment._native_env = env
  return environment


def _to_scopes(args, kw):
  scopes = []
  for arg in args:
    if isinstance(arg, Object):
      scopes.append(arg._v)
    elif isinstance(arg, Environment):
      scopes.append(arg._native())
    else:
      wrapped = Environment.wrap(arg)
      if isinstance(wrapped, Environment):
        scopes.append(wrapped._native())
      else:
        # pystachio accepts this and fails at lookup time; we fail now.
        raise TypeError('cannot bind %r: a scope must be a dict, an Environment or an Object'
                        % (arg,))
  if kw:
    scopes.append(Environment(kw)._native())
  return scopes


class Object(object):
  """Base of every pystachio value. The value itself, with everything bound to it, lives in
  the engine; methods that derive a new value return a new handle of the same class."""
  __slots__ = ('_v',)

  class CoercionError(ValueError):
    def __init__(self, src, dst=None, message=None):
      if dst is None:
        # Raised by the engine with the message already formatted.
        ValueError.__init__(self, src)
      else:
        error = "Cannot coerce '%s' to %s" % (src, dst.__name__)
        ValueError.__init__(self, '%s: %s' % (error, message) if message else error)

  class InterpolationError(Exception): pass

  @classmethod
  def checker(cls, obj):
    raise NotImplementedError

  def get(self):
    return self._v.get()

  def __hash__(self):
    return self._v.hash()

  def _rewrap(self, nvalue):
    obj = object.__new__(self.__class__)
    obj._v = nvalue
    return obj

  def dup(self):
    return self._rewrap(self._v)

  def copy(self):
    """Another handle on the same engine value (values are immutable, so nothing is
    duplicated)."""
    return self._rewrap(self._v)

  def __copy__(self):
    return self.copy()

  def __deepcopy__(self, memo):
    return self.copy()

  @staticmethod
  def translate_to_scopes(*args, **kw):
    """The arguments of `bind` as scopes: Namables as given, anything else through
    `Environment.wrap`, and keywords as one more Environment at the end."""
    scopes = tuple(arg if isinstance(arg, Namable) else Environment.wrap(arg) for arg in args)
    return (scopes + (Environment(kw),)) if kw else scopes

  def bind(self, *args, **kw):
    """A copy with extra scopes that take precedence over the ones it already has."""
    return self._rewrap(self._v.bind(_to_scopes(args, kw)))

  def in_scope(self, *args, **kw):
    """A copy with extra scopes consulted only after the ones it already has: a fallback
    rather than an override."""
    return self._rewrap(self._v.in_scope(_to_scopes(args, kw)))

  def scopes(self):
    """The scopes templates are resolved in, first searched first: Environments and the
    objects bound with `bind`/`in_scope` (a Struct lists its own fields first, and a
    `super.` copy of its scopes last)."""
    return tuple(_wrap(scope) if isinstance(scope, _native.Value) else _environment_from_native(*scope)
                 for scope in self._v.scopes())

  def check(self):
    """Whether the value, interpolated in its scopes, fits its type (a TypeCheck)."""
    ok, message = self._v.check()
    return TypeCheck(ok, message)

  def __eq__(self, other):
    if not isinstance(other, Object):
      return False
    return self._v.eq(other._v)

  def __ne__(self, other):
    return not (self == other)

  def __mod__(self, namable):
    """`value % {'name': ...}`: bind, then interpolate as far as the bindings allow."""
    scope = Environment.wrap(namable) if isinstance(namable, dict) else namable
    return self.bind(scope).interpolate()[0]

  def interpolate(self):
    """Resolves what the scopes can resolve. Returns the resulting value and the Refs that
    are still unbound (empty when the value is complete)."""
    nvalue, refs = self._v.interpolate()
    return _wrap(nvalue), [Ref.from_address(r) for r in refs]

  def __str__(self):
    return self._v.str()

  def __repr__(self):
    return self._v.repr()
