"""Structs: schema-based composite objects, as pystachio 0.8.10's ``composite`` module; a
facade over the Rust engine, which holds the struct types and values."""
from collections.abc import Mapping

from .. import _native
from .base import Environment, Object, _CLASSES, _class_for, _engine_factory, _find, _wrap
from .naming import Namable, frozendict
from .typing import Type, TypeCheck, TypeFactory, TypeMetaclass


class Empty(object):
  """What a struct field without a value reads as. Used as a marker, never instantiated."""


class TypeSignature(object):
  """One field of a struct schema: its type, whether it must be set, and its default
  (Empty when it has none). A default that is not already of the type is converted."""

  def __init__(self, cls, required=False, default=Empty):
    assert isinstance(cls, type) and issubclass(cls, Object)
    self._cls = cls
    self._required = required
    self._default = default if default is Empty or isinstance(default, cls) else cls(default)

  def serialize(self):
    """`(required, default as plain data or (), has no default, field type)`."""
    plain_default = () if self.empty else self.default.get()
    return (self.required, plain_default, self.empty, self.klazz.serialize_type())

  @staticmethod
  def deserialize(sig, type_dict):
    required, plain_default, empty, field_type = sig
    field_class = TypeFactory.new(type_dict, *field_type)
    default = Empty if empty else field_class(plain_default)
    return TypeSignature(field_class, required=required, default=default)

  def _identity(self):
    return (self.klazz.serialize_type(), self.required, self.default, self.empty)

  def __hash__(self):
    return hash(self._identity())

  def __eq__(self, other):
    return self._identity() == other._identity()

  def __ne__(self, other):
    return not (self == other)

  def __repr__(self):
    return 'TypeSignature(%s, required: %s, default: %s, empty: %s)' % (
      self.klazz.__name__, self.required, self.default, self.empty)

  @property
  def klazz(self):
    return self._cls

  @property
  def required(self):
    return self._required

  @property
  def default(self):
    return self._default

  @property
  def empty(self):
    return self._default is Empty

  @staticmethod
  def wrap(sig):
    """The signature a struct class attribute declares, or None when it declares no field.
    A bare type (`phone = String`) is an optional field without a default."""
    if isinstance(sig, TypeSignature):
      return sig
    if isinstance(sig, type) and issubclass(sig, Object):
      return TypeSignature(sig)
    return None


def Required(cls):
  """A field that must be set for the struct to pass `check()`: `name = Required(String)`."""
  return TypeSignature(cls, required=True)


def Default(cls, default):
  """An optional field that reads as `default` while unset: `port = Default(Integer, 80)`."""
  return TypeSignature(cls, required=False, default=default)


def _typemap_of(ntype, inner=_class_for):
  """The TYPEMAP of a struct type the engine defined (the Aurora schema, for one);
  ``inner(t)`` gives the class of a field type."""
  return {
      name: TypeSignature(inner(ftype), required=required,
                          default=Empty if default is None else _wrap(default))
      for name, ftype, required, default in ntype.fields()}


def _signatures(attributes):
  """The fields declared among a class body's attributes, in declaration order."""
  found = ((name, TypeSignature.wrap(value)) for name, value in attributes.items())
  return [(name, sig) for name, sig in found if sig]


def _native_struct(name, typemap):
  return _native.Type.structure(str(name), [
      (attr, sig.klazz._T, sig.required, sig.default) for attr, sig in typemap.items()])


def _struct_class(ntype, attributes, typemap=None):
  """The class of a native struct type (fields in the type's order)."""
  if typemap is None:
    typemap = _typemap_of(ntype)
  attrs = dict(attributes)
  attrs.update({
      '__slots__': (),
      '_T': ntype,
      'TYPEMAP': typemap,
      'TYPE_PARAMETERS': ntype.signature()[1:],
  })
  cls = TypeMetaclass(ntype.name, (Structural,), attrs)
  return cls


StructFactory = _engine_factory('Struct', __name__)


class StructMetaclass(type):
  """Turns `class Job(Struct): ...` into a struct type: the field declarations in the class
  body become the schema, and the class that comes out is a generated struct class (it
  keeps the body's module, qualname and docstring, not its other attributes)."""

  @staticmethod
  def attributes_to_parameters(attributes):
    """A class body's field declarations in serialized form."""
    return tuple((name, sig.serialize()) for name, sig in _signatures(attributes))

  def __new__(mcs, name, parents, attributes):
    # Only direct subclasses of Struct declare a schema; Struct itself and the classes
    # above it are ordinary classes.
    if not any(parent.__name__ == 'Struct' for parent in parents):
      return type.__new__(mcs, name, parents, attributes)
    typemap = dict(_signatures(attributes))
    ntype = _native_struct(name, typemap)
    kept = {key: attributes[key] for key in ('__classcell__', '__module__', '__qualname__',
                                             '__doc__') if key in attributes}
    cls = _struct_class(ntype, kept, typemap)
    _CLASSES[ntype.key] = cls
    return cls


class IsNotMappingError(ValueError):
  """A struct was given a positional argument that is not a dict-like of field values."""

  def __init__(self, arg):
    ValueError.__init__(self, arg)
    self.arg = arg

  def __str__(self):
    return str(self.arg)

  def __repr__(self):
    return 'IsNotMappingError({!r})'.format(self.arg)


StructMetaclassWrapper = StructMetaclass('StructMetaclassWrapper', (object,), {'__slots__': ()})


class Structural(Object, Type, Namable):
  """Base of every struct class, declared (Struct subclasses) or generated. Fields come from
  mappings and keywords, later ones winning; `x.name()` reads a field."""
  __slots__ = ()

  def __init__(self, *args, **kw):
    rejected = [arg for arg in args if not isinstance(arg, Mapping)]
    if rejected:
      raise IsNotMappingError(rejected[0])
    self._v = self._T.instantiate_struct(args, kw)

  @property
  def _schema_data(self):
    v = self._v
    out = frozendict()
    for name in self.TYPEMAP:
      raw = v.raw_field(name)
      dict.__setitem__(out, name, Empty if raw is None else _wrap(raw))
    return out

  def __call__(self, **kw):
    return self._rewrap(self._v.with_fields(kw))

  def __getattr__(self, attr):
    # Only reached for names the class itself lacks: the field readers. `x.has_port()`
    # wins over a field literally named `has_port`.
    if attr.startswith('__') or attr in ('_v', 'TYPEMAP'):
      raise AttributeError(attr)
    fields = self.TYPEMAP
    if attr.startswith('has_') and attr[4:] in fields:
      field = attr[4:]
      return lambda: self._v.has(field)
    if attr in fields:
      return lambda: self.interpolate_key(attr)
    raise AttributeError("%s has no attribute %s" % (self.__class__.__name__, attr))

  def interpolate_key(self, attribute):
    """The field's value interpolated in the struct's scopes, or Empty when it is unset."""
    value = self._v.field(attribute)
    return Empty if value is None else _wrap(value)

  @classmethod
  def type_factory(cls):
    return 'Struct'

  @classmethod
  def type_parameters(cls):
    return cls.TYPE_PARAMETERS

  @classmethod
  def json_load(cls, fp, strict=False):
    return _wrap(cls._T.json_loads(fp.read(), strict))

  @classmethod
  def json_loads(cls, json_string, strict=False):
    return _wrap(cls._T.json_loads(json_string, strict))

  def json_dump(self, fp):
    return fp.write(self._v.json_dumps())

  def json_dumps(self):
    return self._v.json_dumps()

  def find(self, ref):
    """`.field` lookups, into fields that are set."""
    return _find(self, ref)


class Struct(StructMetaclassWrapper, Structural):
  """Base of user-declared schemas: fields are class attributes (``name = Required(String)``,
  ``port = Default(Integer, 8080)``). Instances are immutable; calling one with keywords
  returns an updated copy."""
  __slots__ = ()
