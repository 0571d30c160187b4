"""The Object base class, values no type can coerce, and Choice fields through
interpolation, against the real pystachio 0.8.10: every snippet of
`pystachio_object_snippets.py` must print what the original printed (recorded below with
pystachio 0.8.10 on CPython 3.11). With PYSTACHIO_PYTHON naming a Python that has pystachio
0.8.10, every snippet file is also run there and compared line by line."""
import os
import subprocess
import sys

import pytest

import aurora.pystachio as P
import pystachio_module_snippets
import pystachio_object_snippets
import pystachio_snippets

EXPECTED = [
    ('object-get', '!NotImplementedError: '),
    ('object-interpolate', '!NotImplementedError: '),
    ('object-check', '!NotImplementedError: '),
    ('object-hash', '!NotImplementedError: '),
    ('object-checker', '!NotImplementedError: '),
    ('object-str-is-default', 'True'),
    ('String-class-get', 'True'),
    ('String-class-interpolate', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to String"),
    ('String-class-str', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to String"),
    ('String-class-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '<class 'snippets.Thing'>' to String"),
    ('String-class-is-coercion-error', 'True'),
    ('String-class-coerce', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to String"),
    ('String-object-get', 'True'),
    ('String-object-interpolate', "!CoercionError: Cannot coerce 'a thing' to String"),
    ('String-object-str', "!CoercionError: Cannot coerce 'a thing' to String"),
    ('String-object-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce 'a thing' to String"),
    ('String-object-is-coercion-error', 'True'),
    ('String-object-coerce', "!CoercionError: Cannot coerce 'a thing' to String"),
    ('String-complex-get', 'True'),
    ('String-complex-interpolate', "!CoercionError: Cannot coerce '1j' to String"),
    ('String-complex-str', "!CoercionError: Cannot coerce '1j' to String"),
    ('String-complex-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '1j' to String"),
    ('String-complex-is-coercion-error', 'True'),
    ('String-complex-coerce', "!CoercionError: Cannot coerce '1j' to String"),
    ('Integer-class-get', 'True'),
    ('Integer-class-interpolate', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Integer"),
    ('Integer-class-str', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Integer"),
    ('Integer-class-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '<class 'snippets.Thing'>' to Integer"),
    ('Integer-class-is-coercion-error', 'True'),
    ('Integer-class-coerce', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Integer"),
    ('Integer-object-get', 'True'),
    ('Integer-object-interpolate', "!CoercionError: Cannot coerce 'a thing' to Integer"),
    ('Integer-object-str', "!CoercionError: Cannot coerce 'a thing' to Integer"),
    ('Integer-object-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce 'a thing' to Integer"),
    ('Integer-object-is-coercion-error', 'True'),
    ('Integer-object-coerce', "!CoercionError: Cannot coerce 'a thing' to Integer"),
    ('Integer-complex-get', 'True'),
    ('Integer-complex-interpolate', "!CoercionError: Cannot coerce '1j' to Integer"),
    ('Integer-complex-str', "!CoercionError: Cannot coerce '1j' to Integer"),
    ('Integer-complex-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '1j' to Integer"),
    ('Integer-complex-is-coercion-error', 'True'),
    ('Integer-complex-coerce', "!CoercionError: Cannot coerce '1j' to Integer"),
    ('Float-class-get', 'True'),
    ('Float-class-interpolate', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Float"),
    ('Float-class-str', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Float"),
    ('Float-class-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '<class 'snippets.Thing'>' to Float"),
    ('Float-class-is-coercion-error', 'True'),
    ('Float-class-coerce', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Float"),
    ('Float-object-get', 'True'),
    ('Float-object-interpolate', "!CoercionError: Cannot coerce 'a thing' to Float"),
    ('Float-object-str', "!CoercionError: Cannot coerce 'a thing' to Float"),
    ('Float-object-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce 'a thing' to Float"),
    ('Float-object-is-coercion-error', 'True'),
    ('Float-object-coerce', "!CoercionError: Cannot coerce 'a thing' to Float"),
    ('Float-complex-get', 'True'),
    ('Float-complex-interpolate', "!CoercionError: Cannot coerce '1j' to Float"),
    ('Float-complex-str', "!CoercionError: Cannot coerce '1j' to Float"),
    ('Float-complex-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '1j' to Float"),
    ('Float-complex-is-coercion-error', 'True'),
    ('Float-complex-coerce', "!CoercionError: Cannot coerce '1j' to Float"),
    ('Boolean-class-get', 'True'),
    ('Boolean-class-interpolate', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Boolean"),
    ('Boolean-class-str', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Boolean"),
    ('Boolean-class-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '<class 'snippets.Thing'>' to Boolean"),
    ('Boolean-class-is-coercion-error', 'True'),
    ('Boolean-class-coerce', "!CoercionError: Cannot coerce '<class 'snippets.Thing'>' to Boolean"),
    ('Boolean-object-get', 'True'),
    ('Boolean-object-interpolate', "!CoercionError: Cannot coerce 'a thing' to Boolean"),
    ('Boolean-object-str', "!CoercionError: Cannot coerce 'a thing' to Boolean"),
    ('Boolean-object-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce 'a thing' to Boolean"),
    ('Boolean-object-is-coercion-error', 'True'),
    ('Boolean-object-coerce', "!CoercionError: Cannot coerce 'a thing' to Boolean"),
    ('Boolean-complex-get', 'True'),
    ('Boolean-complex-interpolate', "!CoercionError: Cannot coerce '1j' to Boolean"),
    ('Boolean-complex-str', "!CoercionError: Cannot coerce '1j' to Boolean"),
    ('Boolean-complex-check', "TypeCheck(FAILED): Unable to interpolate: Cannot coerce '1j' to Boolean"),
    ('Boolean-complex-is-coercion-error', 'True'),
    ('Boolean-complex-coerce', "!CoercionError: Cannot coerce '1j' to Boolean"),
    ('struct-field-object', "TypeCheck(FAILED): S[name] failed: Unable to interpolate: Cannot coerce 'a thing' to String"),
    ('list-element-class', "TypeCheck(FAILED): Element in IntegerList failed check: Unable to interpolate: Cannot coerce '<class 'snippets.Thing'>' to Integer"),
    ('choice-field-class', "'Choice_Integer_String'"),
    ('choice-field-unwrap', 'String(abc)'),
    ('choice-field-repr', 'Choice_Integer_String(String(abc))'),
    ('choice-default-unwrap', 'Integer(5)'),
    ('choice-list-classes', "['Choice_Integer_String', 'Choice_Integer_String']"),
    ('choice-list-unwrap', '[Integer(1), String(a)]'),
    ('choice-map-unwrap', 'String(abc)'),
    ('choice-accessor-class', "'Choice_Integer_String'"),
    ('choice-accessor-unwrap', 'String(abc)'),
    ('choice-unbound', '(S(c={{y}},\\n  d=5), [Ref(y)])'),
    ('choice-unbound-unwrap', 'Integer({{y}})'),
    ('choice-interpolated-again', 'String(abc)'),
    ('choice-json', '\'{"c": "abc", "d": 5, "l": [1, "a"], "m": {"k": "abc"}}\''),
    ('choice-get', "frozendict({'c': 'abc', 'd': 5, 'l': (1, 'a'), 'm': frozendict({'k': 'abc'})})"),
    ('choice-check', 'TypeCheck(OK)'),
    ('choice-eq', '(True, True)'),
    ('choice-top-level', '(Integer(3), [])'),
]


@pytest.fixture(scope='module')
def results():
  return dict(line.split(': ', 1) for line in pystachio_object_snippets.run(P))


@pytest.mark.parametrize('label,expected', EXPECTED)
def test_matches_pystachio(results, label, expected):
  assert results[label] == expected


def test_every_snippet_is_recorded(results):
  assert set(results) == {label for label, _ in EXPECTED}


SNIPPET_MODULES = [pystachio_snippets, pystachio_module_snippets, pystachio_object_snippets]


@pytest.mark.parametrize('module', SNIPPET_MODULES, ids=lambda m: m.__name__)
def test_differential_against_real_pystachio(module):
  reference = os.environ.get('PYSTACHIO_PYTHON')
  if not reference:
    if os.environ.get('AURORA_REQUIRE_ALL') == '1':
      pytest.fail('PYSTACHIO_PYTHON is not set (a Python with pystachio==0.8.10)')
    pytest.skip('PYSTACHIO_PYTHON is not set: the recorded outputs were compared instead')
  here = os.path.dirname(os.path.abspath(__file__))
  run = subprocess.run([reference, module.__file__], cwd=here, capture_output=True, text=True,
                       timeout=120)
  assert run.returncode == 0, run.stderr
  theirs = run.stdout.splitlines()
  ours = [str(line) for line in module.run(P)]
  assert ours == theirs
