"""Type identity, serialization and the factory registry.

A type serializes to a tuple such as ``('List', ('Integer',))``; ``TypeFactory`` turns such a
tuple back into a class, through the factory registered under its first element. Classes made
this way use ``TypeMetaclass``, whose ``isinstance`` is structural, because every
``List(Integer)`` call makes a fresh class and values must still be recognised across them."""
import json

from .naming import frozendict


class TypeCheck(object):
  """The outcome of ``check()``: ok, or failed with a message. Always truthy (test ``ok()``)."""

  class Error(Exception):
    """Kept for compatibility; nothing raises it."""

  @staticmethod
  def success():
    return TypeCheck(True, '')

  @staticmethod
  def failure(msg):
    return TypeCheck(False, msg)

  def __init__(self, success, message):
    self._ok = success
    self._message = message

  def message(self):
    return self._message

  def ok(self):
    return self._ok

  def __repr__(self):
    if self._ok:
      return 'TypeCheck(OK)'
    return 'TypeCheck(FAILED): %s' % (self._message,)


class TypeFactoryType(type):
  """Metaclass of factories: a factory class that defines ``PROVIDES`` registers itself
  under that name (a subclass that only inherits it does not)."""

  _TYPE_FACTORIES = {}

  def __new__(mcs, name, parents, attributes):
    cls = type.__new__(mcs, name, parents, attributes)
    if 'PROVIDES' in attributes:
      TypeFactoryType._TYPE_FACTORIES[attributes['PROVIDES']] = cls
    return cls


TypeFactoryClass = TypeFactoryType('TypeFactoryClass', (object,), {})


def _tupled(value):
  """JSON data back to serialized-type form: lists become tuples, objects frozendicts."""
  if isinstance(value, list):
    return tuple(_tupled(v) for v in value)
  if isinstance(value, dict):
    return frozendict((k, _tupled(v)) for k, v in value.items())
  return value


class TypeFactory(TypeFactoryClass):
  """Builds classes from serialized types; subclasses provide one kind each (``create``)."""

  @staticmethod
  def get_factory(type_name):
    registry = TypeFactoryType._TYPE_FACTORIES
    assert type_name in registry, 'Unknown type: %s, Existing factories: %s' % (
        type_name, registry.keys())
    return registry[type_name]

  @staticmethod
  def create(type_dict, *type_parameters, **kwargs):
    """Makes the class for ``type_parameters``; nested types are made through ``type_dict``."""
    raise NotImplementedError('create unimplemented for: %s' % (type_parameters,))

  @staticmethod
  def new(type_dict, type_factory, *type_parameters, **kwargs):
    """The class for a serialized type, made once per ``type_dict`` (keyed by the whole
    serialized tuple)."""
    key = (type_factory,) + type_parameters
    if key not in type_dict:
      factory = TypeFactory.get_factory(type_factory)
      type_dict[key] = factory.create(type_dict, *type_parameters, **kwargs)
    return type_dict[key]

  @staticmethod
  def wrapper(factory):
    """The user-facing constructor of a factory: ``List(Integer)`` and the like."""
    def wrapper_function(*type_parameters):
      return TypeFactory.new({}, factory.PROVIDES,
                             *tuple(t.serialize_type() for t in type_parameters))
    return wrapper_function

  @staticmethod
  def load(type_tuple, into=None):
    """Rebuilds a serialized type; returns ``into`` (a new dict by default) updated with
    ``{class name: class}`` for it and every type it contains."""
    made = {}
    TypeFactory.new(made, *type_tuple)
    into = {} if into is None else into
    for cls in made.values():
      into[cls.__name__] = cls
    return into

  @staticmethod
  def load_json(json_list, into=None):
    """``load`` for a serialized type read from JSON (lists instead of tuples)."""
    return TypeFactory.load(_tupled(json_list), into=into)

  @staticmethod
  def load_file(filename, into=None):
    """``load_json`` of a file written by ``Type.dump``."""
    with open(filename) as fp:
      return TypeFactory.load_json(json.load(fp), into=into)


class TypeMetaclass(type):
  """Metaclass of generated types: ``isinstance`` compares name, factory and parameters, so
  that separately generated but identical types accept each other's values."""

  def __instancecheck__(cls, other):
    if not (hasattr(other, 'type_factory') and hasattr(other, 'type_parameters')):
      return False
    try:
      return (type(other).__name__ == cls.__name__ and
              other.type_factory() == cls.type_factory() and
              other.type_parameters() == cls.type_parameters())
    except Exception:
      return False

  def __new__(mcls, name, parents, attributes):
    return type.__new__(mcls, name, parents, attributes)


class Type(object):
  """Base of every pystachio type: a serializable identity and a type check."""

  @classmethod
  def type_factory(cls):
    """The registry name of the type's factory (``'List'``, ``'Struct'``, ...)."""
    raise NotImplementedError

  @classmethod
  def type_parameters(cls):
    """What the factory needs to rebuild the type."""
    raise NotImplementedError

  @classmethod
  def serialize_type(cls):
    return (cls.type_factory(),) + cls.type_parameters()

  @classmethod
  def dump(cls, fp):
    """Writes ``serialize_type()`` as JSON."""
    json.dump(cls.serialize_type(), fp)

  def check(self):
    raise NotImplementedError
