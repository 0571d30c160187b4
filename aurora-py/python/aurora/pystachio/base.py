"""Environments and the ``Object`` base class: pystachio 0.8.10's ``base`` module as a facade
over the Rust engine.

An ``Environment`` is a handle (``_env``) on an engine environment, and an ``Object`` a handle
(``_v``) on an engine value: building environments (flattening nested dicts, stringifying
numbers), looking references up in them and everything values do happen in the engine
(``aurora-config``'s ``pystachio`` module). The classes here give that pystachio's names,
signatures and exceptions."""
from .. import _native
from .naming import Namable, Ref
from .parsing import MustacheParser
from .typing import TypeCheck


class Environment(Namable):
  """Named values that templates can refer to: ``Environment({'a': {'b': 1}}, c='x')`` binds
  ``{{a.b}}`` and ``{{c}}``. Built from dicts and other Environments, later ones winning;
  values are strings, numbers (bound as their text), Objects or nested dicts."""
  __slots__ = ('_env',)

  @staticmethod
  def wrap(value):
    """What ``value`` becomes as a binding: a dict becomes an Environment, Objects and
    Environments stay as they are, strings and numbers become text (``ValueError`` for
    anything else)."""
    if isinstance(value, dict):
      return Environment(value)
    if isinstance(value, (Environment, Object)):
      return value
    return _native.binding_text(value)

  def __init__(self, *dicts, **kw):
    self._env = _native.Env.merged(list(dicts) + [kw] if kw else list(dicts))

  @property
  def _table(self):
    """The bindings, by Ref: text, or the Object mounted there."""
    return {Ref.from_address(address): _value_or_text(entry)
            for address, entry in self._env.entries()}

  def find(self, ref):
    """What ``ref`` names: its binding, or what an Object bound at a prefix of ``ref`` has
    under the rest of it. Raises ``Namable.NotFound`` otherwise."""
    found = self._env.find(ref.address()) if ref.components() else None
    if found is None:
      raise Namable.NotFound(self, ref)
    return _value_or_text(found)

  def __repr__(self):
    from pprint import pformat  # only reprs need it, and it is slow to import
    return 'Environment(%s)' % pformat(self._table)

  # Environments never change, so a copy can be the environment itself.
  def __copy__(self):
    return self

  def __deepcopy__(self, memo):
    return self


def _value_or_text(entry):
  return entry if isinstance(entry, str) else _wrap(entry)


# Classes for native types, by serialized signature (structurally equal types share one).
_CLASSES = {}


def _class_for(ntype):
  """The Python class of a native type, created on first use."""
  cls = _CLASSES.get(ntype.key)
  if cls is None:
    cls = _CLASSES[ntype.key] = _new_class(ntype, _class_for)
  return cls


def _new_class(ntype, inner):
  """A new class for a native type; ``inner(t)`` gives the class of a type it contains."""
  from . import basic, choice, composite, container
  from .typing import TypeMetaclass
  kind = ntype.factory
  if kind in ('String', 'Integer', 'Float', 'Boolean'):
    return getattr(basic, kind)
  if kind == 'Enum':
    return TypeMetaclass(ntype.name, (basic.EnumContainer,), {
        '__slots__': (), '_T': ntype, 'VALUES': tuple(ntype.enum_values())})
  if kind == 'List':
    return container._list_class(inner(ntype.element()), ntype)
  if kind == 'Map':
    key, value = ntype.key_value()
    return container._map_class(inner(key), inner(value), ntype)
  if kind == 'Choice':
    return TypeMetaclass(ntype.name, (choice.ChoiceContainer,), {
        '__slots__': (), '_T': ntype, 'CHOICES': [inner(a) for a in ntype.alternatives()],
        'TYPE_PARAMETERS': ntype.signature()[1:]})
  return composite._struct_class(ntype, {}, composite._typemap_of(ntype, inner))


def _classes_for_signature(signature, type_dict):
  """The class of a serialized built-in type: the engine reads the signature and lists the
  types inside it, and each gets a new class unless ``type_dict`` (signature to class) has
  one already. Every class made is added to ``type_dict``."""
  ntype = _native.Type.from_signature(signature)
  cls = None
  for part in ntype.nested():
    key = part.signature()
    cls = type_dict.get(key)
    if cls is None:
      cls = type_dict[key] = _new_class(part, lambda t: type_dict[t.signature()])
      if part.factory == 'Struct':
        # Values of this struct type come back as instances of the newest class.
        _CLASSES[part.key] = cls
  # Also under the signature as given, should it be spelled differently (a list for a tuple).
  type_dict[signature] = cls
  return cls


class _EngineFactory(object):
  """What the built-in factories share: they make their classes from the engine's reading of
  the signature."""

  ENGINE_KIND = True

  @classmethod
  def create(cls, type_dict, *type_parameters, **kwargs):
    return _classes_for_signature((cls.PROVIDES,) + type_parameters, type_dict)


def _engine_factory(kind, module):
  """The factory class registered for the built-in kind ``kind`` (``StringFactory``...)."""
  from .typing import TypeFactory, TypeFactoryType
  return TypeFactoryType('%sFactory' % kind, (_EngineFactory, TypeFactory), {
      '__module__': module, 'PROVIDES': kind})


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


def _environment_from_native(env):
  """An Environment over an engine environment (one of the scopes ``scopes()`` lists)."""
  environment = Environment.__new__(Environment)
  environment._env = env
  return environment


def _to_scopes(args, kw):
  """The engine scopes for ``bind``/``in_scope`` arguments, keywords last."""
  scopes = []
  for arg in args:
    if isinstance(arg, Object):
      scopes.append(arg._v)
    elif isinstance(arg, Environment):
      scopes.append(arg._env)
    elif isinstance(arg, dict):
      scopes.append(Environment(arg)._env)
    else:
      Environment.wrap(arg)  # raises ValueError for what cannot be bound at all
      # pystachio accepts a bare string here and fails at lookup time; we fail now.
      raise TypeError('cannot bind %r: a scope must be a dict, an Environment or an Object'
                      % (arg,))
  if kw:
    scopes.append(Environment(kw)._env)
  return scopes


def _as_scope(arg):
  """One positional ``bind`` argument as a scope object (Namables are scopes already)."""
  return arg if isinstance(arg, Namable) else Environment.wrap(arg)


def _abstract(obj):
  """The engine value behind ``obj``; a bare ``Object`` has none, and what pystachio leaves
  abstract on it raises NotImplementedError."""
  try:
    return obj._v
  except AttributeError:
    raise NotImplementedError() from None


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
    """Type-checks an interpolated value of this class; concrete types define it."""
    raise NotImplementedError

  def get(self):
    """The value as plain Python data, neither interpolated nor coerced."""
    return _abstract(self).get()

  def __hash__(self):
    return _abstract(self).hash()

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
    """The arguments of ``bind`` as the scopes they become, keywords as one Environment at
    the end."""
    return tuple(_as_scope(arg) for arg in args) + ((Environment(kw),) if kw else ())

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
    return tuple(_wrap(scope) if isinstance(scope, _native.Value) else _environment_from_native(scope)
                 for scope in self._v.scopes())

  def check(self):
    """Whether the value, interpolated in its scopes, fits its type (a TypeCheck)."""
    ok, message = _abstract(self).check()
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
    nvalue, refs = _abstract(self).interpolate()
    return _wrap(nvalue), [Ref.from_address(r) for r in refs]

  def __str__(self):
    try:
      handle = self._v
    except AttributeError:
      return object.__repr__(self)
    return handle.str()

  def __repr__(self):
    try:
      handle = self._v
    except AttributeError:
      return object.__repr__(self)
    return handle.repr()
