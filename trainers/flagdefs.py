"""absl flags generated from an experiment's ``Config`` dataclass (one source of defaults).

Each config field becomes a flag of the same name, with its default, help text, choices
and bounds (validated by absl before any work starts). A nested config (a model's, e.g.
``CbowConfig`` in ``jader_w2v.Config.cbow``) is flattened: each of its fields becomes a
flag of its own name, and ``config_from_flags`` rebuilds the nested config from them.
"""

import dataclasses
import typing

from absl import flags

from tfrs_emb.experiments import common
from trainers import console

# The flags belong to the trainer that calls define_config_flags, so its --help lists them.
flags.disclaim_key_flags()


def _kind(default) -> str:
  if isinstance(default, bool):
    return "bool"
  if isinstance(default, int):
    return "integer"
  if isinstance(default, float):
    return "float"
  if isinstance(default, tuple):
    return "list"
  return "string"


def _flag_fields(config_cls):
  """(field, default) of every flag of ``config_cls``: its own fields, and the fields of
  each nested config (``core.config.nested``) in their place, with the nested default's
  values, except the nested field's ``derived`` ones."""
  for f in dataclasses.fields(config_cls):
    if not common.is_nested(f):
      yield f, f.default
      continue
    for inner in dataclasses.fields(f.default):
      if inner.name not in f.metadata["derived"]:
        yield inner, getattr(f.default, inner.name)


def define_config_flags(config_cls, flag_values=flags.FLAGS, skip=()) -> None:
  """Defines one absl flag per field of ``config_cls`` (except ``skip``), nested
  configs' fields flattened into flags of their own names."""
  for f, default in _flag_fields(config_cls):
    if f.name in skip:
      continue
    help_text = f.metadata.get("help", f.name)
    kind = _kind(default)
    choices = f.metadata.get("choices")
    if kind == "string" and choices:
      flags.DEFINE_enum(f.name, default, list(choices), help_text, flag_values=flag_values)
      continue
    if kind == "list":
      default = [str(v) for v in default]
    elif kind == "string" and default is None:
      default = ""
    getattr(flags, f"DEFINE_{kind}")(f.name, default, help_text, flag_values=flag_values)
    lower, upper = f.metadata.get("lower"), f.metadata.get("upper")
    if kind in ("integer", "float", "list") and (lower is not None or upper is not None):
      register_bounds(f.name, lower, upper, _element_type(f) if kind == "list" else None,
                      flag_values=flag_values)


def register_bounds(name: str, lower=None, upper=None, element_type=None,
                    flag_values=flags.FLAGS) -> None:
  """Validates number flag ``name`` (or every element of a list flag whose elements are
  ``element_type``) at start-up against inclusive bounds (None: none); the error names
  the flag and the allowed range."""

  def check(value):
    try:
      numbers = [element_type(v) for v in value] if element_type else [value]
    except ValueError:
      return False
    return all((lower is None or v >= lower) and (upper is None or v <= upper)
               for v in numbers)

  flags.register_validator(
      name, check,
      message=f"--{name} must be in [{'-inf' if lower is None else lower}, "
              f"{'inf' if upper is None else upper}]",
      flag_values=flag_values)


def register_nonempty(name: str, what: str, flag_values=flags.FLAGS) -> None:
  """Validates string flag ``name`` at start-up: not empty or blank."""
  flags.register_validator(name, lambda v: bool(v and v.strip()),
                           message=f"--{name} must be {what} (got an empty value)",
                           flag_values=flag_values)


def config_from_flags(config_cls, flag_values=flags.FLAGS, **overrides):
  """Builds ``config_cls`` from the parsed flags, each nested config rebuilt from its
  flags (its derived fields left to the outer config); list flags are converted to the
  type of the field's default elements; empty strings become None where the default is
  None. Keras progress bars become one line per epoch when stdout is not a terminal
  (``console.for_console``)."""
  values = {}
  for f in dataclasses.fields(config_cls):
    if f.name in overrides:
      values[f.name] = overrides[f.name]
    elif common.is_nested(f):
      values[f.name] = dataclasses.replace(f.default, **{
          inner.name: _flag_value(inner, flag_values)
          for inner in dataclasses.fields(f.default)
          if inner.name not in f.metadata["derived"] and inner.name in flag_values})
    elif f.name in flag_values:
      values[f.name] = _flag_value(f, flag_values)
  config = config_cls(**values)
  try:
    common.check_config(config)
  except ValueError as e:
    raise flags.ValidationError(f"--{e}") from None
  return console.for_console(config)


def _flag_value(f: dataclasses.Field, flag_values):
  value = flag_values[f.name].value
  if isinstance(f.default, tuple):
    element_type = _element_type(f)
    return tuple(element_type(v) for v in value)
  if f.default is None and value == "":
    return None
  return value


def _element_type(f: dataclasses.Field):
  if f.default:
    return type(f.default[0])
  args = typing.get_args(f.type) if not isinstance(f.type, str) else ()
  return args[0] if args and isinstance(args[0], type) else str


def configure_tensorflow(threads: int, cpu_replicas: int = 0) -> None:
  """Process-wide TensorFlow settings a trainer owns: intra-op threads and, to exercise
  ``--strategy=mirrored`` on one machine, ``cpu_replicas`` logical CPU devices (0 = leave).
  Must run before TensorFlow initialises its devices."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if cpu_replicas > 0:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_replicas)
  tf.config.threading.set_intra_op_parallelism_threads(threads)


def configure_cbow_trainer(workers: int, cpu_replicas: int = 0) -> None:
  """What every CBOW trainer (Keras beside gensim) sets for the process: TensorFlow's
  threads and replicas (``configure_tensorflow``) and gensim's log level (its per-epoch
  INFO lines would bury the table)."""
  import logging  # pylint: disable=import-outside-toplevel
  configure_tensorflow(workers, cpu_replicas)
  logging.getLogger("gensim").setLevel(logging.WARNING)


def table_main(config_cls, run, export_label: str):
  """absl ``main`` of a table experiment: flags → Config → ``run(config, log=print)`` →
  the table, its notes, and where metrics.json and the SavedModel (``export_label``) went."""
  def main(argv):
    del argv
    config = config_from_flags(config_cls)
    configure_cbow_trainer(config.workers, config.cpu_replicas)
    result = run(config, log=lambda m: print(m, flush=True))
    print(result.table)
    print("\n".join(result.notes))
    print(f"metrics: {result.metrics_path}; {export_label}: "
          f"{result.export_path or '(not exported)'}")
  return main
