"""scripts/execute_notebooks.py: the report it writes is the one it reads back."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("execute_notebooks",
                                              ROOT / "scripts" / "execute_notebooks.py")
ex = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ex)


def test_report_rows_read_back_as_written(tmp_path, monkeypatch):
    monkeypatch.setattr(ex, "REPORT", tmp_path / "report.md")
    times = {"01_a.ipynb": (8.5, 8.1, 9.9, 9.8, 2.5), "02_b.ipynb": (12.0, 11.0, 15.5, 13.4, 3.1)}
    ex.write_report(times, repeat=3)
    text = ex.REPORT.read_text(encoding="utf-8")
    assert {name: tuple(float(v) for v in values)
            for name, *values in ex.ROW.findall(text)} == times
    assert "ran 3 times" in text and "| **total** | **20.5** | | **23.2** | |" in text
    assert "| 13.4 | 3.1 |" in text  # each row's calibration, timed right before its runs


def test_repeat_must_be_positive():
    with pytest.raises(SystemExit):
        ex.main(["--repeat", "0", "x.ipynb"])


def test_every_run_follows_its_own_calibration_and_rows_give_their_median(monkeypatch):
    calls, calibrations = [], iter([2.0, 4.0, 3.0])
    empty = ex.nbformat.v4.new_notebook()
    monkeypatch.setattr(ex, "calibrate", lambda timeout: calls.append("calibrate")
                        or next(calibrations))
    runs = iter([(10.0, 11.0), (12.0, 13.5), (9.0, 10.0)])
    monkeypatch.setattr(ex, "execute", lambda path, timeout, write=True: calls.append(
        f"run, write={write}") or (*next(runs), empty))
    assert ex.run_repeatedly(Path("x.ipynb"), 10, 3) == (10.0, 9.0, 12.0, 11.0, 3.0)
    assert calls == ["calibrate", "run, write=True", "calibrate", "run, write=False",
                     "calibrate", "run, write=False"]
