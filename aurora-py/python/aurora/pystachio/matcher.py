"""``Matcher``: pystachio 0.8.10's reference patterns, a facade over the Rust engine.

``Matcher('docker')[Any].image`` describes references ``docker[<anything>].image``; ``match``
yields the component values of each unbound reference that starts that way, and ``apply``
binds each such prefix to what a callback returns. Aurora's binding helpers
(``{{docker[...]}}`` and friends) are built on it.

The pattern and the matching belong to the engine (``aurora-config``'s ``RefPattern``); each
step's test is a Python regular expression, anchored at both ends, so patterns keep Python's
regex dialect. This module gives it pystachio's names and spelling."""
import re

from .. import _native


class Any(object):
  """Wildcard for one component: ``Matcher('x')[Any]``."""


_EVERYTHING = '.*'


def _anchored(pattern):
  """``pattern`` anchored at both ends (unless it already is) and compiled."""
  try:
    start = '' if pattern.startswith('^') else '^'
    end = '' if pattern.endswith('$') else '$'
  except AttributeError:
    # What pystachio reports for a pattern that is not a string.
    what = ("type object '%s'" % pattern.__name__ if isinstance(pattern, type)
            else "'%s' object" % type(pattern).__name__)
    raise AttributeError("%s has no attribute 'endswith'" % what) from None
  return re.compile(start + pattern + end)


class Matcher(object):
  """An immutable pattern of reference components; each step returns a longer matcher.
  ``m.name`` adds a ``.name`` step, ``m['re']`` an ``[index]`` step, ``m._('re')`` a
  ``.name`` step whose pattern is not an identifier; ``Any`` (or ``m.Any``) matches any
  component."""

  __slots__ = ('_pattern',)

  class Error(Exception):
    """Base class of matcher errors."""

  class NoMatch(Error):
    """A reference does not follow the pattern."""

  @classmethod
  def escape(cls, pattern):
    """The compiled regex a step uses: ``pattern`` anchored at both ends."""
    return _anchored(pattern)

  def __init__(self, root=None):
    if root is None:
      self._pattern = _native.RefPattern()
    elif root is Any or isinstance(root, str):
      self._pattern = _native.RefPattern().then(False, _anchored(
          _EVERYTHING if root is Any else root))
    else:
      raise ValueError('Invalid root match value: %s' % (root,))

  def _step(self, index, pattern):
    longer = Matcher.__new__(Matcher)
    longer._pattern = self._pattern.then(index, _anchored(pattern))
    return longer

  def _(self, pattern):
    """A ``.name`` step matching the regex ``pattern``."""
    return self._step(False, pattern)

  def __getattr__(self, name):
    # Only reached for names the class lacks: every other attribute is a `.name` step.
    return self._step(False, _EVERYTHING if name == 'Any' else name)

  def __getitem__(self, pattern):
    return self._step(True, _EVERYTHING if pattern is Any else pattern)

  def __repr__(self):
    steps = ('%s%r' % ('[' if index else '.', regex) + (']' if index else '')
             for index, regex in self._pattern.steps())
    return 'Match(%s)' % '+'.join(steps)

  def match(self, pystachio_object):
    """Yields, for each unbound reference of the object (in order, repeats included), the
    values of the components the pattern covers."""
    _, unbound = pystachio_object.interpolate()
    for values in self._pattern.prefixes([ref.address() for ref in unbound]):
      yield tuple(values)

  def apply(self, binder, pystachio_object):
    """The object bound with ``{matched prefix: binder(*component values)}`` for each match."""
    return pystachio_object.bind({self._pattern.reference(list(values)): binder(*values)
                                  for values in self.match(pystachio_object)})
