"""Every experiment checks its output folders before any work: a file where a folder is
expected stops ``run`` at once, naming the flag (CI runs as root, so a file is the
portable way to make a folder unwritable)."""

import importlib
import re

import pytest

from tfrs_emb.core import files

CASES = [("bench_cbow", "cache_dir"), ("bench_encoder", "output_dir"),
         ("bench_retrieval", "output_dir"), ("bench_retrieval", "export_dir"),
         ("jader_w2v", "output_dir"), ("jader_w2v", "checkpoint_dir"),
         ("set2vec", "output_dir"), ("set2vec", "export_dir"), ("tabular", "output_dir"),
         ("tabular", "export_dir"), ("techblog", "output_dir"), ("techblog", "export_dir")]


@pytest.mark.parametrize("module,name", CASES)
def test_a_file_as_output_folder_fails_before_any_work(tmp_path, module, name):
  experiment = importlib.import_module(f"tfrs_emb.experiments.{module}")
  taken = tmp_path / "taken"
  taken.write_text("a file")
  extra = {"posts_dir": str(tmp_path / "posts")} if module == "techblog" else {}
  config = experiment.Config(**{name: str(taken / "run"), **extra})
  with pytest.raises(files.OutputPathError,
                     match=re.escape(f"--{name}={taken / 'run'}: {taken} is a file")):
    experiment.run(config)
  assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]   # nothing written
