"""List and Map types, as pystachio 0.8.10's ``container`` module: a facade over the Rust
engine, where the elements live; these classes hand out Python handles on them, interpolated
where the pystachio API reads values."""
from collections.abc import Iterable, Mapping, Sequence

from .base import Object, _engine_factory, _find, _wrap
from .naming import Namable, frozendict
from .typing import Type, TypeCheck, TypeFactory, TypeMetaclass


def _is_object_class(value):
  return isinstance(value, type) and issubclass(value, Object)


def _list_class(element, ntype):
  """The class for lists of `element` (named like IntegerList); `ntype` is its engine type."""
  return TypeMetaclass('%sList' % element.__name__, (ListContainer,), {
      '__slots__': (), '_T': ntype, 'TYPE': element,
      'TYPE_PARAMETERS': ntype.signature()[1:]})


def _map_class(key, value, ntype):
  """The class for maps from `key` to `value` (named like StringIntegerMap)."""
  return TypeMetaclass('%s%sMap' % (key.__name__, value.__name__), (MapContainer,), {
      '__slots__': (), '_T': ntype, 'KEYTYPE': key, 'VALUETYPE': value,
      'TYPE_PARAMETERS': ntype.signature()[1:]})


ListFactory = _engine_factory('List', __name__)


class ListContainer(Object, Namable, Type):
  """Base of list classes; `List(Integer)` makes a concrete one (with TYPE set). Reading
  elements (iteration, indexing, `in`) interpolates the list first."""
  __slots__ = ()

  def __init__(self, vals):
    self._v = self._T.instantiate(vals)

  @property
  def _values(self):
    return tuple(_wrap(v) for v in self._v.elements())

  def __iter__(self):
    si, _ = self._v.interpolate()
    return iter([_wrap(v) for v in si.elements()])

  def __getitem__(self, index_or_slice):
    si, _ = self._v.interpolate()
    return tuple(_wrap(v) for v in si.elements())[index_or_slice]

  def __contains__(self, item):
    # Values of the element type are compared as values, anything else as plain data.
    resolved = self.interpolate()[0]
    return item in (resolved._values if isinstance(item, self.TYPE) else resolved.get())

  def __hash__(self):
    return hash(self.get())

  @staticmethod
  def isiterable(values):
    return isinstance(values, Sequence) and not isinstance(values, str)

  def find(self, ref):
    """`[n]` lookups by position."""
    return _find(self, ref)

  @classmethod
  def type_factory(cls):
    return 'List'

  @classmethod
  def type_parameters(cls):
    return cls.TYPE_PARAMETERS


List = TypeFactory.wrapper(ListFactory)


MapFactory = _engine_factory('Map', __name__)


class MapContainer(Object, Namable, Type):
  """Base of map classes; `Map(String, Integer)` makes a concrete one (KEYTYPE and
  VALUETYPE set). Built from one mapping, or from any number of (key, value) pairs."""
  __slots__ = ()

  def __init__(self, *args):
    if len(args) == 1 and isinstance(args[0], Mapping):
      entries = args[0]
    elif all(isinstance(arg, Iterable) and len(arg) == 2 for arg in args):
      entries = [tuple(arg) for arg in args]
    else:
      raise ValueError("Unexpected input to MapContainer: %s" % repr(args))
    self._v = self._T.instantiate(entries)

  @property
  def _map(self):
    return tuple((_wrap(k), _wrap(v)) for k, v in self._v.pairs())

  def __hash__(self):
    return hash(self.get())

  def __iter__(self):
    si, _ = self._v.interpolate()
    return iter([_wrap(k) for k, _ in si.pairs()])

  def __getitem__(self, key):
    """The value for `key` (converted to the key type), after interpolation."""
    if not isinstance(key, self.KEYTYPE):
      try:
        key = self.KEYTYPE(key)
      except ValueError:
        # pystachio means to raise a KeyError here, but its message has one argument for two
        # placeholders, so what callers actually get is this TypeError. Kept for parity.
        raise TypeError('not enough arguments for format string')
    for entry_key, entry_value in self.interpolate()[0]._map:
      if key == entry_key:
        return entry_value
    raise KeyError("%s not found" % key)

  def __contains__(self, item):
    try:
      self[item]
      return True
    except KeyError:
      return False

  def find(self, ref):
    """`[key]` lookups; the key text is converted to the key type first."""
    return _find(self, ref)

  @classmethod
  def type_factory(cls):
    return 'Map'

  @classmethod
  def type_parameters(cls):
    return cls.TYPE_PARAMETERS


Map = TypeFactory.wrapper(MapFactory)
