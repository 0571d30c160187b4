"""Type identity, serialization and the factory registry: pystachio 0.8.10's ``typing``
module as a facade over the Rust engine.

A type serializes to a tuple such as ``('List', ('Integer',))``. Reading such a signature,
checking it and taking it apart into the types it is built from is the engine's work
(``aurora-config``'s ``Type::load``/``nested``); the classes for the built-in kinds are made
from what it returns (``base._classes_for_signature``). ``TypeFactory`` keeps pystachio's
registry, so a factory class defining ``PROVIDES`` adds a kind of its own. Classes made this
way use ``TypeMetaclass``, whose ``isinstance`` is structural, because every ``List(Integer)``
call makes a fresh class and values must still be recognised across them."""
from .. import _native


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


class TypeFactory(TypeFactoryClass):
  """Builds classes from serialized types; each registered subclass provides one kind
  (``PROVIDES``) through its ``create``."""

  @staticmethod
  def get_factory(type_name):
    """The factory registered under ``type_name`` (AssertionError for an unknown one)."""
    registry = TypeFactoryType._TYPE_FACTORIES
    factory = registry.get(type_name)
    if factory is None:
      raise AssertionError('Unknown type: %s, Existing factories: %s' % (
          type_name, registry.keys()))
    return factory

  @staticmethod
  def create(type_dict, *type_parameters, **kwargs):
    """Makes the class for ``type_parameters``; nested types are made through ``type_dict``."""
    raise NotImplementedError('create unimplemented for: %s' % (type_parameters,))

  @staticmethod
  def new(type_dict, type_factory, *type_parameters, **kwargs):
    """The class for the serialized type ``(type_factory,) + type_parameters``, made once per
    ``type_dict`` (signature to class). The engine makes the built-in kinds and records every
    type inside them in ``type_dict`` as well; a kind registered by other code is made by its
    factory's ``create``."""
    signature = (type_factory,) + type_parameters
    known = type_dict.get(signature)
    if known is not None:
      return known
    factory = TypeFactory.get_factory(type_factory)
    if getattr(factory, 'ENGINE_KIND', False):
      from .base import _classes_for_signature
      return _classes_for_signature(signature, type_dict)
    made = type_dict[signature] = factory.create(type_dict, *type_parameters, **kwargs)
    return made

  @staticmethod
  def wrapper(factory):
    """The user-facing constructor of a factory: ``List(Integer)`` and the like."""
    def wrapper_function(*types):
      return TypeFactory.new({}, factory.PROVIDES, *[t.serialize_type() for t in types])
    return wrapper_function

  @staticmethod
  def load(type_tuple, into=None):
    """Rebuilds a serialized type. Returns ``into`` (a new dict by default) updated with
    ``{class name: class}`` for it and every type it contains."""
    made = {}
    TypeFactory.new(made, *type_tuple)
    names = {cls.__name__: cls for cls in made.values()}
    if into is None:
      return names
    into.update(names)
    return into

  @staticmethod
  def load_json(json_list, into=None):
    """``load`` for a serialized type read from JSON (lists instead of tuples)."""
    return TypeFactory.load(_native.signature_from_data(json_list), into=into)

  @staticmethod
  def load_file(filename, into=None):
    """``load`` of a file written by ``Type.dump``."""
    with open(filename) as fp:
      text = fp.read()
    return TypeFactory.load(_native.signature_from_json(text), into=into)


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
  """Base of every pystachio type: a serializable identity and a type check. Types the
  engine defines serialize from their engine descriptor (``_T``); others (and the abstract
  bases) from ``type_factory()`` and ``type_parameters()``."""

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
    """The type as a signature tuple, e.g. ``('List', ('Integer',))``."""
    native = cls.__dict__.get('_T')
    if native is None:
      return (cls.type_factory(),) + cls.type_parameters()
    return native.signature()

  @classmethod
  def dump(cls, fp):
    """Writes ``serialize_type()`` as JSON."""
    native = cls.__dict__.get('_T')
    if native is not None:
      fp.write(native.signature_text())
    else:
      import json
      json.dump(cls.serialize_type(), fp)

  def check(self):
    """Whether the value fits its type (a TypeCheck); concrete types define it."""
    raise NotImplementedError
