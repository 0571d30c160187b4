"""Scalars: String, Integer, Float, Boolean and enumerations, as pystachio 0.8.10's ``basic``
module; a facade over the Rust engine, which stores, coerces and checks the values.
Construction is lazy, as in pystachio: the raw value is kept and coerced when interpolated."""
from .. import _native
from .base import Object, _engine_factory
from .parsing import MustacheParser
from .typing import Type, TypeCheck, TypeFactory, TypeMetaclass


class SimpleObject(Object, Type):
  """A scalar. The raw input is kept as given (it may be a template such as '{{port}}') and
  is coerced to the type only when interpolated."""
  __slots__ = ()

  def __init__(self, value):
    self._v = self._T.instantiate(value)

  @property
  def _value(self):
    return self._v.raw()

  @classmethod
  def coerce(cls, value):
    """``value`` converted to the type's Python form (CoercionError when it cannot be)."""
    return cls._T.coerce(value)

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


StringFactory = _engine_factory('String', __name__)


class Integer(SimpleObject):
  __slots__ = ()
  _T = _native.Type.integer()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, Integer)
    return obj.check()


IntegerFactory = _engine_factory('Integer', __name__)


class Float(SimpleObject):
  __slots__ = ()
  _T = _native.Type.float()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, Float)
    return obj.check()


FloatFactory = _engine_factory('Float', __name__)


class Boolean(SimpleObject):
  __slots__ = ()
  _T = _native.Type.boolean()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, Boolean)
    return obj.check()


BooleanFactory = _engine_factory('Boolean', __name__)


class EnumContainer(SimpleObject):
  """Base of enumeration types: a string limited to the class's VALUES."""
  __slots__ = ()

  @classmethod
  def checker(cls, obj):
    assert isinstance(obj, EnumContainer)
    return obj.check()

  @classmethod
  def type_factory(cls):
    return 'Enum'

  @classmethod
  def type_parameters(cls):
    return (cls.__name__, cls.VALUES)


EnumFactory = _engine_factory('Enum', __name__)


def Enum(*args):
  """`Enum('Color', ['Red', 'Green'])` makes a type named Color; `Enum('Red', 'Green')` makes
  the same kind of type, named Enum_Red_Green."""
  if len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], (list, tuple)):
    name, values = args
  else:
    name, values = 'Enum_' + '_'.join(args), args
  return TypeFactory.new({}, EnumFactory.PROVIDES, name, values)
