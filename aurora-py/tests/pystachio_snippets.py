import sys
def run(P):
    out = []
    def t(label, f):
        try: out.append(('%s: %s' % (label, f())).replace('\n', '\\n'))
        except Exception as e: out.append(('%s: !%s: %s' % (label, type(e).__name__, e)).replace('\n', '\\n'))
    S, I, F, B, L, M = P.String, P.Integer, P.Float, P.Boolean, P.List, P.Map
    class Profile(P.Struct):
        name = P.Required(S)
        port = P.Default(I, 8080)
        tags = L(S)
    class Outer(P.Struct):
        profile = Profile
        cmd = S
    p = Profile(name='web')
    t('repr', lambda: repr(p))
    t('json', lambda: p.json_dumps())
    t('check-missing', lambda: repr(Profile().check()))
    t('check-unbound-int', lambda: repr(Profile(name='x', port='{{p}}').check()))
    t('bind', lambda: Profile(name='{{n}}').bind(n='bound').name())
    t('mod', lambda: repr(S('{{a}}-{{b}}') % {'a': 1, 'b': 2.5}))
    t('float-fmt', lambda: str(S('{{x}}').bind(x=1e20)))
    t('float-repr', lambda: repr(F(1e16)))
    t('coerce', lambda: I('abc').get() and str(I('abc')))
    t('unknown-attr', lambda: Profile(nope=1))
    t('has', lambda: (p.has_name(), p.has_tags()))
    t('field', lambda: repr(p.port()))
    t('nested', lambda: repr(Outer(profile=p, cmd='run {{profile.name}}:{{profile.port}}').cmd()))
    t('outer-repr', lambda: repr(Outer(profile=p, cmd='x')))
    t('list', lambda: repr(L(I)([1, 2, '{{x}}'])))
    t('list-check', lambda: repr(L(I)([1, '{{x}}']).check()))
    t('map', lambda: repr(M(S, I)({'a': 1})))
    t('map-get', lambda: repr(M(S, I)({'a': 1})['a']))
    t('enum', lambda: repr(P.Enum('Red', 'Green')('Blue')))
    t('enum2', lambda: repr(P.Enum('Red', 'Green')('Red')))
    t('choice', lambda: repr(P.Choice([I, S])('hello')))
    t('choice-unwrap', lambda: repr(P.Choice([I, S])('hello').unwrap()))
    t('cycle', lambda: str(S('{{a}}').bind(a='{{a}}')))
    t('cycle-check', lambda: repr(S('{{a}}').bind(a='{{b}}', b='{{a}}').check()))
    t('badref', lambda: str(S('{{ x }}')))
    t('interp', lambda: repr(S('{{a}} {{b.c}}').bind(a=1).interpolate()))
    t('eq', lambda: (I(1) == I('1'), F(1) == I(1), S('a') == 'a', p == Profile(name='web', port=8080)))
    t('isinstance', lambda: (isinstance(p, Profile), isinstance(Outer(profile=p).profile(), Profile)))
    t('call', lambda: repr(p(port=1)))
    t('typesig', lambda: Profile.serialize_type())
    t('get', lambda: p.get())
    t('list-get', lambda: L(I)([1, 2]).get())
    t('bool', lambda: repr(B('true')))
    t('bool-bad', lambda: str(B('yes')))
    t('self', lambda: str(Outer(cmd='{{self.cmd}}x')))
    t('ref', lambda: (repr(P.Ref.from_address('a.b[c]')), str(P.Ref.from_address('a[0]'))))
    t('badaddr', lambda: P.Ref.from_address('1a'))
    t('notmapping', lambda: Profile(1))
    t('listbad', lambda: L(I)({'a': 1}))
    t('tc', lambda: (repr(P.TypeCheck.success()), repr(P.TypeCheck.failure('x'))))
    t('env', lambda: str(S('{{a.b}}').bind(P.Environment({'a': {'b': 'deep'}}))))
    t('bindobj', lambda: str(S('{{name}}:{{port}}').bind(p)))
    return out



if __name__ == '__main__':
    import pystachio
    for line in run(pystachio):
        print(line)
