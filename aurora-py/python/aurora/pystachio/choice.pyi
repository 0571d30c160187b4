"""Typed interface of `aurora.pystachio.choice`."""
from typing import Any, ClassVar

from .base import Object
from .typing import Type, TypeFactory

class ChoiceFactory(TypeFactory): ...

class ChoiceContainer(Object, Type):
    CHOICES: ClassVar[list[type[Object]]]
    def __init__(self, val: Any) -> None: ...
    def unwrap(self) -> Object: ...

def Choice(*args: Any) -> type[ChoiceContainer]: ...
