"""References (``Ref``), the ``Namable`` protocol scopes implement, and ``frozendict``:
pystachio 0.8.10's ``naming`` module, a facade over the Rust engine for addresses.

Addresses are parsed by the engine (``_native.parse_ref``), so a ``{{tag}}`` means the same
thing here as in the engine's own interpolation. A ``Ref`` is then plain Python data: a tuple
of ``Ref.Index``/``Ref.Dereference`` components whose values may be any object (the ``Matcher``
stores compiled regexes in them)."""
from functools import lru_cache

from .. import _native


class frozendict(dict):
  """The dict that ``get()`` returns for structs and maps: hashable, compared by sorted items.

  Only another frozendict compares: ``frozendict(...) == {}`` raises ``AttributeError``, as in
  pystachio, so that code depending on that keeps failing the same way."""

  def _frozen_items(self):
    return tuple(sorted(self.items()))

  def __hash__(self):
    return hash(self._frozen_items())

  def __eq__(self, other):
    return self._frozen_items() == other._frozen_items()

  def __ne__(self, other):
    return not self == other

  def __repr__(self):
    return 'frozendict(%s)' % dict.__repr__(self)


class Namable(object):
  """Anything a reference can be looked up in (``find``): environments, structs, lists, maps."""

  class Error(Exception):
    """A lookup failed; resolution moves on to the next scope."""

  class Unnamable(Error):
    """The path continues into a value that cannot be looked into."""

    def __init__(self, obj):
      super().__init__('Object is not indexable: %s' % type(obj).__name__)

  class NamingError(Error):
    """The first component has the wrong kind for the object (``.x`` on a list, ...)."""

    def __init__(self, obj, ref):
      super().__init__('Cannot dereference object %s by %s' % (type(obj).__name__, ref.action()))

  class NotFound(Error):
    """The object has nothing under the first component."""

    def __init__(self, obj, ref):
      super().__init__('Could not find %s in object %s' % (ref.action().value, type(obj).__name__))

  def find(self, ref):
    """Returns what ``ref`` names inside this object; subclasses implement it."""
    raise NotImplementedError


class Ref(object):
  """A reference such as ``a.b[c]``: what a ``{{...}}`` tag or a binding key names."""

  class Component(object):
    """One step of a reference; equal to another step of the same kind and value."""

    def __init__(self, value):
      self._value = value

    @property
    def value(self):
      return self._value

    def __hash__(self):
      return hash(self._value)

    def __eq__(self, other):
      return type(self) is type(other) and self._value == other._value

    def __ne__(self, other):
      return not self == other

    # Steps order by value alone, whatever their kind.
    def __lt__(self, other):
      return self._value < other.value

    def __gt__(self, other):
      return self._value > other.value

  class Index(Component):
    """``[value]``: an element of a list or map."""

    def __repr__(self):
      return '[%s]' % (self._value,)

  class Dereference(Component):
    """``.value``: a field of a struct or a key of an environment."""

    def __repr__(self):
      return '.%s' % (self._value,)

  class InvalidRefError(Exception):
    """An address that does not follow the grammar."""

  class UnnamableError(Exception):
    """Kept for compatibility; nothing raises it."""

  @staticmethod
  def wrap(value):
    """A Ref as is, anything else parsed as an address."""
    return value if isinstance(value, Ref) else Ref.from_address(value)

  @staticmethod
  @lru_cache(maxsize=1024)
  def from_address(address):
    """Parses ``address`` (the leading ``.`` of a dereference may be omitted)."""
    if not isinstance(address, str) or not address:
      raise Ref.InvalidRefError('Invalid address: %r' % (address,))
    return Ref(Ref._components_of(_native.parse_ref(address)))

  @staticmethod
  def _components_of(parsed):
    return [Ref.Dereference(value) if deref else Ref.Index(value) for deref, value in parsed]

  def __init__(self, components):
    self._components = tuple(components)

  def components(self):
    return self._components

  def action(self):
    """The first component."""
    return self._components[0]

  def is_index(self):
    return isinstance(self.action(), Ref.Index)

  def is_dereference(self):
    return isinstance(self.action(), Ref.Dereference)

  def is_empty(self):
    return not self._components

  def rest(self):
    """Everything after the first component."""
    return Ref(self._components[1:])

  def __add__(self, other):
    return Ref(self._components + tuple(other.components()))

  @staticmethod
  def subscope(ref1, ref2):
    """What is left of ``ref2`` after ``ref1`` when ``ref1`` is a strict prefix, else None."""
    head, full = ref1.components(), ref2.components()
    rest = full[len(head):]
    return Ref(rest) if rest and full[:len(head)] == head else None

  def scoped_to(self, ref):
    """``Ref.subscope(self, ref)``."""
    return Ref.subscope(self, ref)

  @staticmethod
  def split_components(address):
    """The components of a fully spelled address (it must start with ``.`` or ``[``)."""
    if not address:
      return []
    if address[0] not in '.[':
      raise Ref.InvalidRefError('Badly formed address %s' % address)
    try:
      return Ref._components_of(_native.parse_ref(address))
    except Ref.InvalidRefError:
      raise Ref.InvalidRefError('Badly formed address %s' % address) from None

  def address(self):
    """The address in normal form: ``a.b[c]``."""
    text = ''.join(str(c) for c in self._components)
    return text[1:] if text.startswith('.') else text

  def __str__(self):
    return '{{%s}}' % self.address()

  def __repr__(self):
    return 'Ref(%s)' % self.address()

  def __eq__(self, other):
    return self.components() == other.components()

  def __ne__(self, other):
    return not self == other

  @staticmethod
  def compare(self, other):
    """-1, 0 or 1: shorter refs first, then by component values."""
    mine, theirs = self.components(), other.components()
    if len(mine) != len(theirs):
      return -1 if len(mine) < len(theirs) else 1
    mine = tuple(c.value for c in mine)
    theirs = tuple(c.value for c in theirs)
    if mine == theirs:
      return 0
    return 1 if mine > theirs else -1

  # Only < and > exist (no <=, >=), as in pystachio.
  def __lt__(self, other):
    return Ref.compare(self, other) == -1

  def __gt__(self, other):
    return Ref.compare(self, other) == 1

  def __hash__(self):
    return hash(self._components)
