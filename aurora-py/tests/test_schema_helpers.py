"""The Aurora schema's option helpers: `java_options` renders `-name value` for every name,
`python_options` spells one-letter names `-a` and longer ones `--name` (Aurora 0.6's
`Options.java`/`Options.python`); bare flags, dicts and keywords are rendered in order."""
from aurora.config.schema import Options, java_options, python_options


def test_java_options_use_one_dash():
  assert java_options('a', {'b': 23}, verbose=None, c='foo') == '-a -b 23 -verbose -c foo'


def test_python_options_spell_long_names_with_two_dashes():
  assert python_options('a', 'boo', {'x': 'y'}, level=3) == '-a --boo -x y --level 3'


def test_empty_values_leave_the_flag_alone():
  assert python_options({'v': 0, 'quiet': '', 'n': None}) == '-v --quiet -n'


def test_other_arguments_are_skipped():
  assert java_options(1, ['x'], 'a') == '-a'


def test_render_option_picks_the_prefix_by_length():
  assert Options.render_option('+', '++', 'a', 'b') == '+a b'
  assert Options.render_option('+', '++', 'ab') == '++ab'
