"""The Aurora schema's option helpers: `java_options` renders `-name value` for every name,
`python_options` spells one-letter names `-a` and longer ones `--name` (Aurora 0.6's
`Options.java`/`Options.python`); bare flags, dicts and keywords are rendered in order.
`Units` does the task helpers' resource arithmetic."""
from aurora.config.schema import (
    Options, Process, Resources, Task, Units, java_options, python_options)
from aurora.pystachio import Empty, Integer


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


def test_units_add_up_side_by_side_and_take_maxima_in_sequence():
  a, b = Resources(cpu=1, ram=2, disk=3), Resources(cpu=0.5, ram=5, disk=1)
  assert Units.resources_sum(a, b) == Resources(cpu=1.5, ram=7, disk=4)
  assert Units.resources_sum(a, Empty) == Resources(cpu=1.0, ram=2, disk=3)
  assert Units.resources_sum() == Resources(cpu=0.0, ram=0, disk=0)
  assert Units.resources_max([a, b]) == Resources(cpu=1.0, ram=5, disk=3)
  assert Units.finalization_wait_sum([Integer(3), Integer(4)]) == 7
  assert Units.finalization_wait_max([Integer(3), Integer(4)]) == 4
  assert Units.finalization_wait_max([]) == 0


def test_units_merge_processes_once_in_order():
  p1, p2 = Process(name='a', cmdline='x'), Process(name='b', cmdline='y')
  merged = Units.processes_merge([Task(processes=[p1, p2]), Task(processes=[p2])])
  assert [str(p.name()) for p in merged] == ['a', 'b']
  assert Units.processes_merge([]) == []
