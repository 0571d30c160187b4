"""``MustacheParser``: pystachio 0.8.10's template API, a facade over the Rust engine.

The tag grammar, the substitution pass and the iterative resolution all live in the engine
(``aurora-config``'s ``pystachio::mustache``), the same code that interpolates values, so a
template means the same thing whichever way it is evaluated. This module only gives them
pystachio's names and exceptions.

Grammar, for reference: ``{{`` + content without braces + ``}}``, innermost tag first; content
starting with ``&`` (optionally ending with ``&``) is an escape that renders as a literal
``{{content}}``; any other content must be a reference address (``Ref.InvalidRefError``
otherwise)."""
from .. import _native


class MustacheParser(object):
  """Splits, joins and resolves ``{{ref}}`` templates against scopes (``Namable``s)."""

  MAX_ITERATIONS = 100

  class Error(Exception):
    """Base class of template errors."""

  class Uninterpolatable(Error):
    """Substitution never settled (a cycle or unbounded growth)."""

  @classmethod
  def split(cls, string, keep_aliases=False):
    """The template as a list of literal strings and ``Ref``s (empty literals dropped).

    An escape ``{{&x}}`` becomes the literal ``'{{x}}'``, or stays ``'{{&x}}'`` with
    ``keep_aliases`` (so that a later pass still treats it as an escape)."""
    return _native.split(string, keep_aliases)

  @classmethod
  def join(cls, splits, *namables, found_refs=None):
    """One substitution pass over split pieces: each ``Ref`` is looked up in ``found_refs``,
    then in ``namables`` (the first whose ``find`` does not raise ``Namable.Error`` wins),
    remembered in ``found_refs`` and rendered with ``str()``.

    Returns ``(text, unresolved refs in order)``. Without ``found_refs``, calls share one
    process-wide table, as they do in pystachio 0.8.10."""
    return _native.join(splits, namables, found_refs)

  @classmethod
  def resolve(cls, stream, *namables):
    """Substitutes until a pass resolves nothing, re-reading the output each time (so that
    substituted text and computed names like ``{{a{{b}}}}`` resolve too), then turns escapes
    into literal tags. Returns ``(text, unbound refs)``; raises ``Uninterpolatable`` after
    ``MAX_ITERATIONS`` passes."""
    return _native.resolve(stream, namables)
