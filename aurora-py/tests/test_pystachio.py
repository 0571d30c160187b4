"""The pystachio API against the real pystachio 0.8.10: every snippet of
`pystachio_snippets.py` must print what the original printed (recorded below with
pystachio 0.8.10 on CPython 3.11)."""
import pytest

import aurora.pystachio as P
from pystachio_snippets import run

EXPECTED = [
    ('repr', 'Profile(name=web,\\n        port=8080)'),
    ('json', '{"name": "web", "port": 8080}'),
    ('check-missing', 'TypeCheck(FAILED): Profile[name] is required.'),
    ('check-unbound-int', "TypeCheck(FAILED): Profile[port] failed: '{{p}}' not an integer"),
    ('bind', 'bound'),
    ('mod', 'String(1-2.5)'),
    ('float-fmt', '1e+20'),
    ('float-repr', 'Float(1e+16)'),
    ('coerce', "!CoercionError: Cannot coerce 'abc' to Integer"),
    ('unknown-attr', '!AttributeError: Unknown schema attribute nope'),
    ('has', '(True, False)'),
    ('field', 'Integer(8080)'),
    ('nested', 'String(run web:8080)'),
    ('outer-repr', 'Outer(profile=Profile(name=web,\\n        port=8080),\\n      cmd=x)'),
    ('list', 'IntegerList(1, 2, {{x}})'),
    ('list-check', "TypeCheck(FAILED): Element in IntegerList failed check: '{{x}}' not an integer"),
    ('map', 'StringIntegerMap(a => 1)'),
    ('map-get', 'Integer(1)'),
    ('enum', '!ValueError: Enum_Red_Green only accepts the following values: Red, Green'),
    ('enum2', 'Enum_Red_Green(Red)'),
    ('choice', "Choice_Integer_String('hello')"),
    ('choice-unwrap', 'String(hello)'),
    ('cycle', '!Uninterpolatable: Unable to interpolate {{a}}!  Maximum replacements reached.'),
    ('cycle-check', 'TypeCheck(FAILED): Unable to interpolate: Unable to interpolate {{a}}!  Maximum replacements reached.'),
    ('badref', '!InvalidRefError:  x '),
    ('interp', '(String(1 {{b.c}}), [Ref(b.c)])'),
    ('eq', '(True, False, False, True)'),
    ('isinstance', '(True, True)'),
    ('call', 'Profile(name=web,\\n        port=1)'),
    ('typesig', "('Struct', 'Profile', (('name', (True, (), True, ('String',))), ('port', (False, 8080, False, ('Integer',))), ('tags', (False, (), True, ('List', ('String',))))))"),
    ('get', "frozendict({'name': 'web', 'port': 8080})"),
    ('list-get', '(1, 2)'),
    ('bool', 'Boolean(True)'),
    ('bool-bad', "!CoercionError: Cannot coerce 'yes' to Boolean"),
    ('self', '!Uninterpolatable: Unable to interpolate {{self.cmd}}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx!  Maximum replacements reached.'),
    ('ref', "('Ref(a.b[c])', '{{a[0]}}')"),
    ('badaddr', '!InvalidRefError: 1a'),
    ('notmapping', '!IsNotMappingError: 1'),
    ('listbad', "!ValueError: ListContainer expects an iterable, got {'a': 1}"),
    ('tc', "('TypeCheck(OK)', 'TypeCheck(FAILED): x')"),
    ('env', 'deep'),
    ('bindobj', 'web:8080'),
]


@pytest.fixture(scope='module')
def results():
  return dict(line.split(': ', 1) for line in run(P))


@pytest.mark.parametrize('label,expected', EXPECTED)
def test_matches_pystachio(results, label, expected):
  assert results[label] == expected


def test_star_import_exports_what_pystachio_exports():
  namespace = {}
  exec('from aurora.pystachio import *', namespace)
  for name in ('Environment', 'Boolean', 'Enum', 'Float', 'Integer', 'String', 'Choice',
               'Default', 'Empty', 'Required', 'Struct', 'List', 'Map', 'Namable', 'Ref',
               'MustacheParser', 'Type', 'TypeCheck', 'TypeFactory', 'sys', 'base', 'basic',
               'composite', 'container', 'naming', 'parsing', 'typing'):
    assert name in namespace, name


def test_submodules_reexport_like_pystachio():
  from aurora.pystachio.composite import Environment, Namable, Structural, TypeSignature
  from aurora.pystachio.naming import frozendict
  from aurora.pystachio.matcher import Any, Matcher
  from aurora.pystachio.config import Config
  assert Structural and TypeSignature and Environment and Namable and frozendict
  assert Config.DEFAULT_SCHEMA == 'from pystachio import *'
  m = Matcher('packer')[Any][Any]
  s = P.String('{{packer[a][b]}} {{other}}')
  assert list(m.match(s)) == [('packer', 'a', 'b')]


def test_struct_subclass_with_defaults_and_templates():
  class Profile(P.Struct):
    name = P.Required(P.String)
    instances = P.Default(P.Integer, 1)
    cmdline = P.Default(P.String, 'run {{name}} x{{instances}}')

  p = Profile(name='web').bind(instances=5)
  # A struct's own fields beat its bindings.
  assert str(p.cmdline()) == 'run web x1'
  assert p(instances=3).json_dumps() == '{"name": "web", "instances": 3, "cmdline": "run web x3"}'
  assert Profile().check().message() == 'Profile[name] is required.'


def test_type_factory_round_trip():
  class Profile(P.Struct):
    name = P.Required(P.String)
    tags = P.List(P.String)
  loaded = P.TypeFactory.load(Profile.serialize_type())
  assert set(loaded) == {'Profile', 'String', 'StringList'}
  again = loaded['Profile'](name='x', tags=['a'])
  assert isinstance(again, Profile)
  assert again.json_dumps() == '{"name": "x", "tags": ["a"]}'
