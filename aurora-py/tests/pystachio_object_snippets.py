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
    return out


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
