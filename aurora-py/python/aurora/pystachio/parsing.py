"""``MustacheParser``: pystachio's ``{{ref}}`` templates as a Python API.

Values interpolate in the Rust engine; this module serves code that calls the parser directly
(``split``/``join``/``resolve`` over arbitrary ``Namable`` scopes), and names the exceptions
the engine raises. The tag grammar is the engine's: ``{{`` + content without braces + ``}}``,
innermost tag first; content starting with ``&`` (optionally ending with ``&``) is an escape
that renders as a literal ``{{content}}``; any other content must be a reference address."""
from .naming import Namable, Ref


def _require_text(text):
  """Rejects non-strings the way a regular-expression scan of them would."""
  if isinstance(text, str):
    return
  if isinstance(text, (bytes, bytearray, memoryview)):
    raise TypeError('cannot use a string pattern on a bytes-like object')
  raise TypeError('expected string or bytes-like object, got %r' % type(text).__name__)


def _next_tag(text, start):
  """The first tag at or after ``start``: ``(begin, end, is_escape, content)`` or None."""
  while True:
    begin = text.find('{{', start)
    if begin < 0:
      return None
    inner = begin + 2
    close = inner
    while close < len(text) and text[close] not in '{}':
      close += 1
    if text.startswith('}}', close):
      content = text[inner:close]
      if content.startswith('&') and len(content) > 1:
        content = content[1:]
        if len(content) > 1 and content.endswith('&'):
          content = content[:-1]
        return begin, close + 2, True, content
      if content:
        return begin, close + 2, False, content
    start = begin + 1


class MustacheParser(object):
  """Splits, joins and resolves ``{{ref}}`` templates against scopes."""

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
    _require_text(string)
    pieces, pos = [], 0
    while True:
      tag = _next_tag(string, pos)
      if tag is None:
        break
      begin, end, escape, content = tag
      if begin > pos:
        pieces.append(string[pos:begin])
      if escape:
        pieces.append(('{{&%s}}' if keep_aliases else '{{%s}}') % content)
      else:
        pieces.append(Ref.from_address(content))
      pos = end
    if pos < len(string):
      pieces.append(string[pos:])
    return pieces

  # `found_refs` deliberately defaults to one shared dict: pystachio's direct `join()` calls
  # share their lookups that way, and code may depend on it.
  @classmethod
  def join(cls, splits, *namables, found_refs={}):  # noqa: B006
    """Renders split pieces, looking each Ref up in ``namables`` (first that has it wins).

    Returns ``(text, unresolved refs in order)``; found values are rendered with ``str()``
    and remembered in ``found_refs``."""
    rendered, unresolved = [], []
    for piece in splits:
      if not isinstance(piece, Ref):
        rendered.append(piece)
        continue
      if piece not in found_refs:
        for namable in namables:
          try:
            found_refs[piece] = namable.find(piece)
          except Namable.Error:
            continue
          break
      if piece in found_refs:
        rendered.append(found_refs[piece])
      else:
        rendered.append(piece)
        unresolved.append(piece)
    return ''.join(str(p) for p in rendered), unresolved

  @classmethod
  def resolve(cls, stream, *namables):
    """Substitutes until a pass resolves nothing, re-reading the output each time (so that
    substituted text and computed names like ``{{a{{b}}}}`` resolve too), then turns escapes
    into literal tags. Returns ``(text, unbound refs)``."""
    found = {}
    for _ in range(cls.MAX_ITERATIONS):
      pieces = cls.split(stream, keep_aliases=True)
      refs = sum(1 for p in pieces if isinstance(p, Ref))
      text, unbound = cls.join(pieces, *namables, found_refs=found)
      if len(unbound) == refs:
        break
      stream = text
    else:
      raise cls.Uninterpolatable(
          'Unable to interpolate %s!  Maximum replacements reached.' % stream)
    return cls.join(cls.split(stream), *namables, found_refs=found)
