"""Choice types: a value accepted as the first of several alternative types that fits it.
pystachio 0.8.10's ``choice`` module as a facade over the Rust engine, which does the
matching; this module only names the classes."""
from .base import Object, _engine_factory, _wrap
from .typing import Type, TypeCheck, TypeFactory, TypeMetaclass


ChoiceFactory = _engine_factory('Choice', __name__)


class ChoiceContainer(Object, Type):
  """Base of choice classes. The raw input is kept; which alternative it is gets decided
  when it is interpolated or checked."""
  __slots__ = ()

  def __init__(self, val):
    self._v = self._T.instantiate(val)

  @property
  def _value(self):
    return self._v.raw()

  def get(self):
    return self.unwrap().get()

  def unwrap(self):
    """The value as the alternative it matched (after interpolation)."""
    return self.interpolate()[0]

  def __hash__(self):
    return hash(self.get())

  def __str__(self):
    return str(self.unwrap())

  @classmethod
  def type_factory(cls):
    return 'Choice'

  @classmethod
  def type_parameters(cls):
    return cls.TYPE_PARAMETERS


def Choice(*args):
  """A new choice type. `Choice('Port', [Integer, String])` names it; with only the list,
  `Choice([Integer, String])`, the name is made from the alternatives: Choice_Integer_String.
  Alternatives are tried in the order given."""
  if len(args) == 2:
    name, options = args
  else:
    options = args[0]
    name = 'Choice_' + '_'.join(option.__name__ for option in options)
  assert isinstance(name, str)
  assert all(issubclass(option, Type) for option in options)
  return TypeFactory.new({}, ChoiceFactory.PROVIDES, name,
                         tuple(option.serialize_type() for option in options))
