"""The Invoke layer: thin, and every user mistake is a clear exit code 2, never a traceback."""

import re

import pytest
from invoke.context import MockContext, Result
from invoke.exceptions import Exit

import tasks


def test_unknown_test_tier_exits_2_naming_the_choices():
    with pytest.raises(Exit) as exc:
        tasks.test(MockContext(), tier="smoke")
    assert exc.value.code == 2
    assert "unknown tier 'smoke'" in str(exc.value.message) and "integration" in str(exc.value.message)


def test_test_task_runs_pytest_with_the_tier_marker():
    # MockContext refuses any command that matches no key, so this fails unless the marker is passed.
    context = MockContext(run={re.compile(r'.* -m pytest -m "not slow and not integration and not infra'): Result()})
    tasks.test(context, tier="unit")


def test_render_with_an_unknown_env_exits_2_with_the_known_ones():
    with pytest.raises(Exit) as exc:
        tasks.render(MockContext(), env="prod", tag="abc")
    assert exc.value.code == 2
    assert "unknown environment 'prod'" in str(exc.value.message)


def test_every_task_has_a_docstring_and_help_for_each_flag():
    names = list(tasks.ns.task_names)
    assert {"train", "render", "build", "up", "down", "status", "logs", "clean", "test", "images.base"} <= set(names)
    for name in names:
        task = tasks.ns[name]
        assert task.__doc__ and task.__doc__.strip(), name
        for argument in task.get_arguments():
            assert argument.help, f"{name}: --{argument.name} has no help"
