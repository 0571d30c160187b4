"""``Matcher``: find (and bind) the unbound references of a value that follow a pattern.

``Matcher('docker')[Any].image`` describes references ``docker[<anything>].image``; ``match``
yields the component values of each unbound reference that starts that way, and ``apply``
binds each such prefix to what a callback returns. Aurora's binding helpers (``{{docker[...]}}``
and friends) are built on it."""
import re

from .naming import Ref


class Any(object):
  """Wildcard for one component: ``Matcher('x')[Any]``."""


class Matcher(object):
  """An immutable pattern of reference components; each step returns a longer matcher."""

  __slots__ = ('_components',)

  class Error(Exception):
    """Base class of matcher errors."""

  class NoMatch(Error):
    """A reference does not follow the pattern."""

  @classmethod
  def escape(cls, pattern):
    """Anchors a component pattern at both ends and compiles it (the pattern is a regex)."""
    if not pattern.endswith('$'):
      pattern += '$'
    if not pattern.startswith('^'):
      pattern = '^' + pattern
    return re.compile(pattern)

  def __init__(self, root=None):
    if root is None:
      self._components = []
    elif root is Any:
      self._components = [Ref.Dereference(self.escape('.*'))]
    elif isinstance(root, str):
      self._components = [Ref.Dereference(self.escape(root))]
    else:
      raise ValueError('Invalid root match value: %s' % (root,))

  def _with(self, component):
    longer = Matcher()
    longer._components = self._components + [component]
    return longer

  def __getattr__(self, pattern):
    # `m._('re')` takes a pattern that is not an identifier; `m.Any` is the wildcard.
    if pattern == '_':
      return lambda regex: self._with(Ref.Dereference(self.escape(regex)))
    if pattern == 'Any':
      pattern = '.*'
    return self._with(Ref.Dereference(self.escape(pattern)))

  def __getitem__(self, pattern):
    if pattern is Any:
      pattern = '.*'
    return self._with(Ref.Index(self.escape(pattern)))

  def __repr__(self):
    return 'Match(%s)' % '+'.join(repr(c) for c in self._components)

  def _prefix_of(self, ref):
    """The values of the components of ``ref`` that the pattern covers, or NoMatch."""
    parts = ref.components()
    if len(parts) < len(self._components):
      raise self.NoMatch(ref)
    for want, have in zip(self._components, parts):
      if type(want) is not type(have) or not want.value.match(have.value):
        raise self.NoMatch(ref)
    return tuple(have.value for have in parts[:len(self._components)])

  def match(self, pystachio_object):
    """Yields, for each unbound reference of the object (in order, repeats included), the
    values of the components the pattern covers."""
    _, unbound = pystachio_object.interpolate()
    for ref in unbound:
      try:
        yield self._prefix_of(ref)
      except self.NoMatch:
        continue

  def _ref_for(self, values):
    return Ref([type(want)(value) for want, value in zip(self._components, values)])

  def apply(self, binder, pystachio_object):
    """The object bound with ``{matched prefix: binder(*component values)}`` for each match."""
    bindings = {}
    for values in self.match(pystachio_object):
      bindings[self._ref_for(values)] = binder(*values)
    return pystachio_object.bind(bindings)
