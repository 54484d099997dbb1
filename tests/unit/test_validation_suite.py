"""bench/validation_suite.py refuses what it cannot score before any work: exit 2, naming the problem."""

import sys

import pytest

from bench import validation_suite


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--conditions", "pen_0.45,nope"], "no condition nope; the suite's: canvas"),
        (["--conditions", "letters,pen_0.45", "--misreads", "{tmp}/misreads.png"], "letters holds no digit to misread"),
        (["--conditions", "pen_0.45"], "model.onnx is missing"),
    ],
)
def test_what_it_cannot_score_exits_2_naming_it(options, said, tmp_path, monkeypatch, capsys):
    model = tmp_path / "models" / "not-a-model"
    model.mkdir(parents=True)
    argv = [option.format(tmp=tmp_path) for option in options]
    monkeypatch.setattr(sys, "argv", ["validation_suite.py", str(model), *argv])
    assert validation_suite.main() == 2
    out = " ".join(capsys.readouterr().out.split())  # rich folds long lines
    assert said in out, out
    assert not (tmp_path / "misreads.png").exists()
