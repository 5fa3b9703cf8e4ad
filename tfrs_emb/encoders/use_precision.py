"""The precisions of the USE multilingual tower (``use_multilingual``'s module docstring
says what each computes), importable without TensorFlow so flags can name them."""

PRECISIONS = ("fp32", "fp16_table", "bf16")
# /proc/cpuinfo flags of CPUs with native bfloat16 products (either one suffices).
BF16_CPU_FEATURES = ("avx512_bf16", "amx_bf16")
