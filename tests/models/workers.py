"""Launching worker processes on 127.0.0.1 for the multi-worker tests."""

import os
import pathlib
import socket
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
TIMEOUT_S = 150


def free_ports(n: int):
  """n distinct free TCP ports on 127.0.0.1 (held open together so they differ)."""
  socks = [socket.socket() for _ in range(n)]
  try:
    for s in socks:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


def start(module: str, args, tf_config=None, log=None) -> subprocess.Popen:
  """Starts ``python -m module args`` from the repository root (TF_CONFIG only if given)."""
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  env.update(TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT))
  if tf_config:
    env["TF_CONFIG"] = tf_config
  return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          stdout=log, stderr=subprocess.STDOUT)


def wait_all(procs, logs):
  """Waits for every process; on a timeout or failure kills the rest and fails with logs."""
  try:
    for p in procs:
      p.wait(timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    pass
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  failed = [(p.returncode, log) for p, log in zip(procs, logs) if p.returncode != 0]
  assert not failed, "\n\n".join(
      f"rc={rc} {log}:\n{pathlib.Path(log).read_text()[-3000:]}" for rc, log in failed)
