"""Snippets over the Object base class, coercion of values no type accepts, and Choice fields
through interpolation, run against a pystachio package (the real pystachio 0.8.10 or
aurora.pystachio). `test_pystachio_objects.py` holds what the real library printed."""
import importlib
import re


def run(P):
    out = []

    def t(label, f):
        try:
            r = repr(f())
        except Exception as e:
            r = '!%s: %s' % (type(e).__name__, e)
        # Object addresses differ from run to run.
        out.append('%s: %s' % (label, re.sub(r' at 0x[0-9a-f]+', ' at 0x', r).replace('\n', '\\n')))

    base = importlib.import_module(P.__name__ + '.base')
    Object = base.Object
    bare = Object()
    # The abstract methods of the base class.
    t('object-get', lambda: bare.get())
    t('object-interpolate', lambda: bare.interpolate())
    t('object-check', lambda: bare.check())
    t('object-hash', lambda: hash(bare))
    t('object-checker', lambda: Object.checker(bare))
    t('object-str-is-default', lambda: str(bare) == object.__repr__(bare))

    # Values no basic type can coerce: construction is lazy, coercion raises the type's error.
    class Thing(object):
        def __str__(self):
            return 'a thing'
    # The same name whichever file runs the snippets.
    Thing.__module__, Thing.__qualname__ = 'snippets', 'Thing'

    thing = Thing()
    for T in (P.String, P.Integer, P.Float, P.Boolean):
        for label, value in (('class', Thing), ('object', thing), ('complex', 1j)):
            name = '%s-%s' % (T.__name__, label)
            t(name + '-get', lambda T=T, v=value: T(v).get() is v)
            t(name + '-interpolate', lambda T=T, v=value: T(v).interpolate())
            t(name + '-str', lambda T=T, v=value: str(T(v)))
            t(name + '-check', lambda T=T, v=value: T(v).check())
            t(name + '-is-coercion-error', lambda T=T, v=value: isinstance(
                _raised(lambda: str(T(v))), T.CoercionError))
            t(name + '-coerce', lambda T=T, v=value: T.coerce(v))
    t('struct-field-object', lambda: _struct(P)(name=thing).check())
    t('list-element-class', lambda: P.List(P.Integer)([Thing]).check())

    # Choice fields keep their Choice through interpolate().
    C = P.Choice([P.Integer, P.String])
    S = _struct(P, C)
    s = S(c='{{x}}', l=[1, 'a'], m={'k': '{{x}}'}).bind(x='abc')
    si = s.interpolate()[0]
    t('choice-field-class', lambda: type(si.c()).__name__)
    t('choice-field-unwrap', lambda: si.c().unwrap())
    t('choice-field-repr', lambda: si.c())
    t('choice-default-unwrap', lambda: si.d().unwrap())
    t('choice-list-classes', lambda: [type(x).__name__ for x in si.l()])
    t('choice-list-unwrap', lambda: [x.unwrap() for x in si.l()])
    t('choice-map-unwrap', lambda: si.m()['k'].unwrap())
    t('choice-accessor-class', lambda: type(s.c()).__name__)
    t('choice-accessor-unwrap', lambda: s.c().unwrap())
    t('choice-unbound', lambda: S(c='{{y}}').interpolate())
    t('choice-unbound-unwrap', lambda: S(c='{{y}}').interpolate()[0].c().unwrap())
    t('choice-interpolated-again', lambda: si.interpolate()[0].c().unwrap())
    t('choice-json', lambda: si.json_dumps())
    t('choice-get', lambda: si.get())
    t('choice-check', lambda: si.check())
    t('choice-eq', lambda: (si == s, si.c() == s.c()))
    t('choice-top-level', lambda: C('{{y}}').bind(y=3).interpolate())
    environment_snippets(P, t)
    return out


def environment_snippets(P, t):
    """Environments, the parser over scopes of any kind, and the matcher, as the engine
    provides them."""
    matcher = importlib.import_module(P.__name__ + '.matcher')
    M, Any = matcher.Matcher, matcher.Any
    E, R, MP = P.Environment, P.Ref.from_address, P.MustacheParser
    t('env-nested', lambda: E({'a': {'b': 1, 'c': {'d': 2.5}}}, x=True))
    t('env-bad-value', lambda: E(a=[1]))
    t('env-bad-source', lambda: E(1))
    t('env-bad-source-list', lambda: E([('a', 1)]))
    t('env-ref-key', lambda: E({R('a.b'): 'x'}))
    t('env-bad-key', lambda: E({'1a': 'x'}))
    t('env-int-key', lambda: E({1: 'x'}))
    t('env-merge', lambda: E(E(a=1), {'a': 2, 'b': 3}))
    t('env-find', lambda: E(a={'b': 'c'}).find(R('a.b')))
    t('env-find-miss', lambda: E(a=1).find(R('b')))
    t('env-find-past-text', lambda: E(a=1).find(R('a.b')))
    S = type('S', (P.Struct,), {'x': P.String, 'l': P.List(P.Integer)})
    s = S(x='{{y}}', l=[1, 2])
    t('env-find-mounted', lambda: E(s=s).find(R('s.x')))
    t('env-find-mounted-index', lambda: E(s=s).find(R('s.l[1]')))
    t('env-find-mounted-whole', lambda: E(s=s).find(R('s')))
    t('env-find-mounted-miss', lambda: E(s=s).find(R('s.z')))
    t('env-wrap', lambda: (E.wrap(1), E.wrap(1.5), E.wrap(True), E.wrap('x'),
                           type(E.wrap({})).__name__, E.wrap(s) is s))
    t('env-wrap-bad', lambda: E.wrap(None))
    t('env-wrap-big', lambda: E.wrap(10**30))
    t('bind-none', lambda: P.String('{{a}}').bind(None))
    t('mod-dict', lambda: P.String('{{a.b}}') % {'a': {'b': 1}})
    t('in-scope-env', lambda: P.String('{{a}}').in_scope(E(a=1), a=2))
    t('translate', lambda: P.String.translate_to_scopes({'a': 1}, s, b=2))
    t('resolve-struct-then-env', lambda: MP.resolve('{{x}} {{l[0]}} {{y}}', s, E(y='Y')))

    class Only(P.Namable):
        def find(self, ref):
            if ref.address() == 'q':
                return 'Q!'
            raise P.Namable.NotFound(self, ref)

    class Broken(P.Namable):
        def find(self, ref):
            raise KeyError('boom')

    t('resolve-own-namable', lambda: MP.resolve('{{q}} {{z}} {{x}}', Only(), s))
    t('join-own-namable', lambda: MP.join(MP.split('{{q}}-{{z}}'), Only(), found_refs={}))
    t('resolve-broken-namable', lambda: MP.resolve('{{q}}', Broken()))
    t('resolve-bytes', lambda: MP.resolve(b'{{q}}'))
    t('split-none', lambda: MP.split(None))
    t('matcher-apply-struct', lambda: M('y').apply(lambda *a: 'Y', s).x())
    t('matcher-index-any', lambda: list(M('l')[Any].match(P.String('{{l[0]}} {{l.x}} {{l[a][b]}}'))))
    t('enum-list-values', lambda: P.Enum('Color', ['R', 'G']))
    t('enum-named', lambda: P.Enum('Color', ('R', 'G'))('R'))
    t('choice-named', lambda: P.Choice('Port', [P.Integer, P.String])('x').unwrap())
    t('coerce', lambda: (P.Integer.coerce(' 5'), P.Boolean.coerce('TRUE'), P.String.coerce(1.5),
                         P.Float.coerce('1e3')))
    t('coerce-bad', lambda: P.Integer.coerce('x'))
    t('coerce-enum', lambda: P.Enum('A', 'B').coerce('C'))


def _raised(f):
    try:
        f()
    except Exception as e:
        return e
    return None


def _struct(P, choice=None):
    fields = {'name': P.String}
    if choice is not None:
        fields.update(c=choice, d=P.Default(choice, 5), l=P.List(choice), m=P.Map(P.String, choice))
    return type('S', (P.Struct,), fields)


if __name__ == '__main__':
    import pystachio
    for line in run(pystachio):
        print(line)
