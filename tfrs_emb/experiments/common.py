"""What every experiment shares: the log callable, config fields and config records
(declared in ``tfrs_emb.core``, re-exported here for the experiments)."""

# pylint: disable=unused-import
from tfrs_emb.core.config import check_config, config_dict, field, is_nested, nested  # noqa: F401
from tfrs_emb.core.files import check_output_dirs  # noqa: F401
from tfrs_emb.core.log import Log, no_log  # noqa: F401
