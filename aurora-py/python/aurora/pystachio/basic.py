"""Scalars: String, Integer, Float, Boolean and enumerations. Construction is lazy, as in
pystachio: the raw value is kept and coerced when interpolated."""
from .. import _native
from .base import Object
from .parsing import MustacheParser
from .typing import Type, TypeCheck, TypeFactory, TypeFactoryType, TypeMetaclass


def _scalar_factory(scalar):
  """The factory registered under a scalar's name: it has no parameters and always gives
  `scalar` back."""
  return TypeFactoryType('%sFactory' % scalar.__name__, (TypeFactory,), {
      '__module__': __name__,
      'PROVIDES': scalar.__name__,
      'create': staticmethod(lambda type_dict, *type_parameters: scalar),
  })


def _convert(cls, value, convert):
  """`convert(value)` for the str/int/float inputs scalars accept; other inputs, and
  conversions that fail, are the type's CoercionError."""
  if not isinstance(value, (str, int, float)):
    raise cls.CoercionError(value, cls)
  try:
    return convert(value)
  except ValueError:
    raise cls.CoercionError(value, cls)


_BOOLEAN_WORDS = {'true': True, '1': True, 'false': False, '0': False}


class SimpleObject(Object, Type):
  """A scalar. The raw input is kept as given (it may be a template such as '{{port}}') and
  is coerced to the type only when interpolated."""
  __slots__ = ()

  def __init__(self, value):
    self._v = self._T.instantiate(value)

  @property
  def _value(self):
    return self._v.raw()

  def _order(self, other):
    """-1, 0 or 1 from the interpolated raw values. Values of different classes never
    compare equal: they always count as -1."""
    if self.__class__ != other.__class__:
      return -1
    mine, theirs = self.interpolate()[0]._value, other.interpolate()[0]._value
    return -1 if mine < theirs else int(mine > theirs)

  def __hash__(self):
    return hash(self._value)

  def __eq__(self, other):
    return self._order(other) == 0

  def __lt__(self, other):
    return self._order(other) == -1

  def __gt__(self, other):
    return self._order(other) == 1

  def __le__(self, other):
    return self._order(other) <= 0

  def __ge__(self, other):
    return self._order(other) >= 0

  def __repr__(self):
    return '%s(%s)' % (self.__class__.__name__, str(self))

  @classmethod
  def type_factory(cls):
    return cls.__name__

  @classmethod
  def type_parameters(cls):
    return ()


class String(SimpleObject):
  __slots__ = ()
  _T = _native.Type.string()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, String)
    return obj.check()

  @classmethod
  def coerce(cls, value):
    if not isinstance(value, (str, int, float)):
      raise cls.CoercionError(value, cls)
    return str(value)


StringFactory = _scalar_factory(String)


class Integer(SimpleObject):
  __slots__ = ()
  _T = _native.Type.integer()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, Integer)
    return obj.check()

  @classmethod
  def coerce(cls, value):
    return _convert(cls, value, int)


IntegerFactory = _scalar_factory(Integer)


class Float(SimpleObject):
  __slots__ = ()
  _T = _native.Type.float()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, Float)
    return obj.check()

  @classmethod
  def coerce(cls, value):
    return _convert(cls, value, float)


FloatFactory = _scalar_factory(Float)


class Boolean(SimpleObject):
  __slots__ = ()
  _T = _native.Type.boolean()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, Boolean)
    return obj.check()

  @classmethod
  def coerce(cls, value):
    """Booleans as they are, numbers by truth, and the words true/false/1/0 in any case."""
    if isinstance(value, str):
      word = _BOOLEAN_WORDS.get(value.lower())
      if word is not None:
        return word
    elif isinstance(value, (bool, int, float)):
      return bool(value)
    raise cls.CoercionError(value, cls)


BooleanFactory = _scalar_factory(Boolean)


class EnumContainer(SimpleObject):
  """Base of enumeration types: a string limited to the class's VALUES."""
  __slots__ = ()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, EnumContainer)
    return obj.check()

  @classmethod
  def coerce(cls, value):
    if isinstance(value, str) and value in cls.VALUES:
      return str(value)
    allowed = ', '.join(cls.VALUES)
    raise cls.CoercionError(value, cls, '%s is not one of %s' % (value, allowed))

  @classmethod
  def type_factory(cls):
    return 'Enum'

  @classmethod
  def type_parameters(cls):
    return (cls.__name__, cls.VALUES)


class EnumFactory(TypeFactory):
  PROVIDES = 'Enum'

  @staticmethod
  def create(type_dict, *type_parameters):
    """Parameters: the type's name and the list of strings it allows."""
    name, values = type_parameters
    assert isinstance(values, (list, tuple)) and all(isinstance(v, str) for v in values)
    ntype = _native.Type.enumeration(str(name), list(values))
    return TypeMetaclass(str(name), (EnumContainer,), {
        '__slots__': (), '_T': ntype, 'VALUES': values})


def Enum(*args):
  """`Enum('Color', ['Red', 'Green'])` makes a type named Color; `Enum('Red', 'Green')` makes
  the same kind of type, named Enum_Red_Green."""
  if len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], (list, tuple)):
    name, values = args
  else:
    name, values = 'Enum_' + '_'.join(args), args
  return TypeFactory.new({}, EnumFactory.PROVIDES, name, values)
