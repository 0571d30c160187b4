"""pystachio 0.8.10's API (the typed templating language of ``.aurora`` files) over the Rust
engine of aurora-rs: the same modules, names, behaviour, reprs and error messages."""
# The version pystachio 0.8.10 itself reports.
__version__ = '0.8.3'


import sys  # exported by `from pystachio import *`, as in the original

from .base import Environment
from .basic import Boolean, Enum, Float, Integer, String
from .choice import Choice
from .composite import Default, Empty, Required, Struct
from .container import List, Map
from .naming import Namable, Ref
from .parsing import MustacheParser
from .typing import Type, TypeCheck, TypeFactory

from . import base as _base, composite as _composite, naming as _naming
from .. import _native as _nat

_nat.configure(
    _base.Object.CoercionError,
    MustacheParser.Uninterpolatable,
    Ref.InvalidRefError,
    _composite.IsNotMappingError,
    _naming.frozendict,
    Empty,
    _base.Object,
    _base._wrap,
    Ref.from_address,
    Ref,
    Namable.Error,
)
del _base, _composite, _naming, _nat
