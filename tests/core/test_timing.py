"""core.timing: repeats, interleaving order, kept statistics."""

import itertools

import pytest

from tfrs_emb.core import timing


def test_timing_statistics():
  t = timing.Timing((0.4, 0.2, 0.3, 0.8))
  assert t.best == 0.2
  assert t.median == pytest.approx(0.35)
  assert t.spread == pytest.approx(4.0)
  s = t.summary(count=100)
  assert s["qps"] == pytest.approx(500) and s["qps_median"] == pytest.approx(100 / 0.35)
  assert s["runs"] == 4
  with pytest.raises(ValueError, match="at least one run"):
    timing.Timing(())


class _FakeClock:
  """perf_counter that advances by the duration the running call asks for."""

  def __init__(self):
    self.now = 0.0

  def __call__(self):
    return self.now


def test_interleaved_rotates_order_and_keeps_first_results(monkeypatch):
  clock = _FakeClock()
  monkeypatch.setattr(timing.time, "perf_counter", clock)
  order, counter = [], itertools.count()

  def call(name, seconds):
    def fn():
      order.append(name)
      clock.now += seconds
      return (name, next(counter))
    return fn

  timed = timing.time_interleaved([call("a", 0.1), call("b", 0.2), call("c", 0.3)], rounds=3)
  assert order == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
  assert [out[0] for _, out in timed] == ["a", "b", "c"]
  assert [out[1] for _, out in timed] == [0, 1, 2]   # results of the first round
  assert [len(t.runs) for t, _ in timed] == [3, 3, 3]
  assert [t.best for t, _ in timed] == pytest.approx([0.1, 0.2, 0.3])


def test_long_calls_run_once(monkeypatch):
  clock = _FakeClock()
  monkeypatch.setattr(timing.time, "perf_counter", clock)
  calls = []

  def fn(seconds):
    def run():
      calls.append(seconds)
      clock.now += seconds
    return run

  timed = timing.time_interleaved([fn(6.0), fn(0.5)], rounds=4, repeat_below=5.0)
  assert calls.count(6.0) == 1 and calls.count(0.5) == 4
  t, _ = timing.time_call(fn(0.1), repeats=3)
  assert len(t.runs) == 3
  with pytest.raises(ValueError, match="rounds"):
    timing.time_interleaved([fn(0.1)], rounds=0)
  assert [len(t.runs) for t, _ in timed] == [1, 4]
