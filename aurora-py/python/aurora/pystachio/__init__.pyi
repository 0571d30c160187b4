"""Typed interface of `aurora.pystachio` (pystachio 0.8.10's API)."""
import sys as sys

from . import base as base, basic as basic, choice as choice, composite as composite
from . import container as container, naming as naming, parsing as parsing, typing as typing
from .base import Environment as Environment
from .basic import Boolean as Boolean, Enum as Enum, Float as Float, Integer as Integer
from .basic import String as String
from .choice import Choice as Choice
from .composite import Default as Default, Empty as Empty, Required as Required
from .composite import Struct as Struct
from .container import List as List, Map as Map
from .naming import Namable as Namable, Ref as Ref
from .parsing import MustacheParser as MustacheParser
from .typing import Type as Type, TypeCheck as TypeCheck, TypeFactory as TypeFactory

__version__: str
