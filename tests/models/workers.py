"""Launching worker processes on 127.0.0.1 for the multi-worker tests."""

import os
import pathlib
import socket
import subprocess
import sys

import numpy as np

from tfrs_emb.core.distribute import tf_config as _tf_config

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


def single_and_two_workers(module: str, args, folder: pathlib.Path, name: str):
  """Runs ``module`` once alone and once as two workers of a cluster, side by side.

  Returns:
    (single, chief, other): the .npz results of the one-process run, of worker 0 (the
    chief writes ``multi/name``) and of worker 1 (``multi/<stem>.worker1.npz``).
  """
  cluster = [f"127.0.0.1:{p}" for p in free_ports(2)]
  logs = [folder / n for n in ("single.log", "worker0.log", "worker1.log")]
  handles = [open(log, "w") for log in logs]
  try:
    procs = [start(module, args + [f"--out={folder / 'single' / name}"], log=handles[0])]
    procs += [start(module, args + ["--strategy=multi_worker",
                                    f"--out={folder / 'multi' / name}"],
                    tf_config=_tf_config(cluster, i), log=handles[1 + i]) for i in range(2)]
    wait_all(procs, logs)
  finally:
    for h in handles:
      h.close()
  stem = pathlib.Path(name).stem
  return (np.load(folder / "single" / name), np.load(folder / "multi" / name),
          np.load(folder / "multi" / f"{stem}.worker1.npz"))
