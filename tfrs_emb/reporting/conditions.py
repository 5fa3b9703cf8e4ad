"""Measured machine conditions for reports (never a fixed sentence)."""

import os
import platform
from typing import Any, Dict


def machine_conditions() -> Dict[str, Any]:
  """Load average, CPUs usable by this process and the thread settings in force."""
  try:
    load = os.getloadavg()
  except OSError:
    load = (float("nan"),) * 3
  usable = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
            else os.cpu_count())
  out = {"load_average_1m": round(load[0], 2), "load_average_5m": round(load[1], 2),
         "cpu_count": os.cpu_count(), "usable_cpus": usable,
         "machine": platform.machine(), "python": platform.python_version()}
  for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    if var in os.environ:
      out[var] = os.environ[var]
  try:
    from threadpoolctl import threadpool_info  # pylint: disable=import-outside-toplevel
    out["blas_threads"] = {p.get("internal_api", "?"): p.get("num_threads")
                           for p in threadpool_info()}
  except ImportError:
    pass
  return out


def describe_conditions(before: Dict[str, Any], after: Dict[str, Any]) -> str:
  """One line: load average before → after and the CPUs used."""
  return (f"load average (1 min) {before['load_average_1m']:.2f} before, "
          f"{after['load_average_1m']:.2f} after; {before['usable_cpus']} usable CPUs of "
          f"{before['cpu_count']}; BLAS threads {before.get('blas_threads', 'unknown')}")
