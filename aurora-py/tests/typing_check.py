"""Checked by mypy (not run by pytest): the stubs describe the API users call."""
from aurora import _native
from aurora.config import loader


def job_key_of(path: str) -> str:
  config: loader.LoadedConfig = loader.load(path)
  key, raw = loader.evaluate(config.jobs[0], ['x=1'])
  assert isinstance(raw, dict)
  return key


def native_roundtrip() -> str:
  t = _native.Type.structure('P', [('name', _native.Type.string(), True, None)])
  v: _native.Value = t.instantiate({'name': 'x'})
  ok, message = v.check()
  return v.json_dumps() + message + str(ok)


def hook_config(config: loader.AuroraConfig) -> str:
  cfg, key = loader.HookConfig(config, 'c/r/e/n')
  return key + config.job_key()


def pystachio_api() -> str:
  from aurora.pystachio import (Default, Environment, Integer, List, Map, MustacheParser, Ref,
                                Required, String, Struct, TypeCheck, TypeFactory)
  from aurora.pystachio.config import Config
  from aurora.pystachio.matcher import Any, Matcher
  from aurora.pystachio.naming import frozendict

  class Profile(Struct):
    name = Required(String)
    port = Default(Integer, 8080)
    tags = List(String)
    meta = Map(String, Integer)

  p: Profile = Profile(name='web').bind(port=80)
  q: Profile = p(port=81)
  check: TypeCheck = q.check()
  ref: Ref = Ref.from_address('a.b[c]')
  assert Ref.subscope(Ref.from_address('a'), ref) is not None
  text, unbound = MustacheParser.resolve('{{a}}', Environment(a=1))
  refs: list[Ref] = unbound
  matches = list(Matcher('packer')[Any][Any].match(String('{{packer[a][b]}}')))
  loaded = TypeFactory.load(Profile.serialize_type())
  env = Config('job.aurora').environment
  data: frozendict = p.get()
  return (str(p.name()) + text + repr(check.ok()) + str(refs) + str(matches) + str(sorted(loaded))
          + str(len(env)) + str(data) + q.json_dumps() + str(p.has_name()))
