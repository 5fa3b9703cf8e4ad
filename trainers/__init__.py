"""Runnable absl programs: flags → an experiment's Config → run → print.

Trainers own the process: TensorFlow's C++ log level, printing and seeding.
"""

import os as _os

_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
