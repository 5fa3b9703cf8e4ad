"""CPU feature flags read from a cpuinfo file."""

from tfrs_emb.core import cpu


def test_flags_of_the_first_cpu_are_read(tmp_path):
  info = tmp_path / "cpuinfo"
  info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 avx512_bf16\n\n"
                  "processor\t: 1\nflags\t\t: fpu\n", encoding="utf-8")
  assert cpu.cpu_flags(info) == {"fpu", "avx2", "avx512_bf16"}
  assert cpu.has_any_flag(["amx_bf16", "avx512_bf16"], info) is True
  assert cpu.has_any_flag(["amx_bf16"], info) is False


def test_unreadable_or_flagless_cpuinfo_is_unknown(tmp_path):
  assert cpu.cpu_flags(tmp_path / "absent") is None
  assert cpu.has_any_flag(["avx512_bf16"], tmp_path / "absent") is None
  (tmp_path / "noflags").write_text("processor : 0\n", encoding="utf-8")
  assert cpu.has_any_flag(["avx512_bf16"], tmp_path / "noflags") is None
