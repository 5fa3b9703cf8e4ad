// CbowEpoch: one whole epoch of CBOW with negative sampling over sets, in one op.
//
// Built at set-up against the installed TensorFlow wheel (tfrs_emb/models/cbow_kernel.py);
// tfrs_emb.models.cbow.CBOW's train step calls it and assigns the updated tables.
//
// Inputs: the two [V, d] tables, an epoch plan (SetBatches.plan: flat int32 ids [N] of
// batches of shape shapes[b] = (rows, L), each row one set of L >= 2 distinct elements),
// the int32 noise table (element i in ~p_i of its slots), the epoch's first and last
// learning rate, and a (seed, step) key. Every element of a set is a target; its context
// h_j = (E - e_j) / (L - 1), E = sum of the set's input vectors, all read before the set's
// update (as the batched TF path does). Each target gets `negatives` noise draws of its own
// (shared_negatives = 0, as word2vec) or shares the set's `shared_negatives` draws, each
// weighted negatives / shared_negatives; a draw equal to the target is skipped. Output rows
// are updated as they are scored; the input rows get a * (S - g_j) after the set, S the sum
// of the set's context gradients g_j, a = 1 (word2vec_update, as word2vec.c / gensim) or
// 1 / (L - 1) (the gradient of the mean), so a set costs O(L d), not O(L^2 d).
//
// Threads split the sets into contiguous ranges of equal token counts and update the tables
// without locks (Hogwild, as word2vec.c and gensim); each thread decays its rate linearly
// over its own range. Draws come from a counter-based hash of (seed, step, set, target,
// draw), so a run with threads = 1 is deterministic and the draws do not depend on the split.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::TensorShapeUtils;
namespace errors = ::tensorflow::errors;

// splitmix64's finaliser: a bijective 64-bit mix, good enough as a counter-based RNG.
inline uint64_t Mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline float Dot(const float* a, const float* b, int d) {
  float s = 0.f;
  for (int i = 0; i < d; ++i) s += a[i] * b[i];
  return s;
}

// sigmoid(f) and, when wanted, softplus(-f) = -log sigmoid(f), without overflow.
inline float Sigmoid(float f) { return 1.f / (1.f + std::exp(-std::max(f, -30.f))); }
inline float Softplus(float f) { return f > 30.f ? f : std::log1p(std::exp(f)); }

struct Plan {
  std::vector<int64_t> start;  // first id of each set in the flat ids
  std::vector<int32_t> length;
};

struct Params {
  int dim, negatives, shared;  // shared = 0: per-target draws
  bool word2vec_update;
  const int32_t* ids;
  const int32_t* table;
  int64_t table_size;
  uint64_t key;
  float* in;
  float* out;
};

// Trains sets [first, last) of the plan; returns (summed sampled loss, sampled targets).
std::pair<double, int64_t> TrainRange(const Params& p, const Plan& plan, int64_t first,
                                      int64_t last, float lr_begin, float lr_end) {
  const int d = p.dim;
  const int max_len = plan.length.empty() ? 0 :
      *std::max_element(plan.length.begin() + first, plan.length.begin() + last);
  std::vector<float> total(d), h(d), grads(static_cast<size_t>(std::max(max_len, 1)) * d),
      sum(d);
  const int draws = p.shared ? p.shared : p.negatives;
  const float weight = p.shared ? static_cast<float>(p.negatives) / p.shared : 1.f;
  std::vector<int32_t> noise(draws);
  const int64_t tokens = plan.start[last - 1] + plan.length[last - 1] - plan.start[first];
  double loss = 0.0;
  int64_t scored = 0;
  for (int64_t s = first; s < last; ++s) {
    const int32_t* set = p.ids + plan.start[s];
    const int len = plan.length[s];
    const float lr = lr_begin + (lr_end - lr_begin) *
        static_cast<float>(plan.start[s] - plan.start[first]) / static_cast<float>(tokens);
    const float inv = 1.f / static_cast<float>(len - 1);
    const uint64_t set_key = Mix(p.key ^ Mix(static_cast<uint64_t>(s)));
    const bool log_loss = s % 8 == 0;  // the reported loss: every 8th set
    auto draw = [&](uint64_t counter) {
      const uint64_t r = Mix(set_key + counter) >> 32;
      return p.table[static_cast<int64_t>((r * static_cast<uint64_t>(p.table_size)) >> 32)];
    };
    if (p.shared) {
      for (int k = 0; k < draws; ++k) noise[k] = draw(static_cast<uint64_t>(k));
    }
    std::fill(total.begin(), total.end(), 0.f);
    for (int j = 0; j < len; ++j) {
      const float* e = p.in + static_cast<int64_t>(set[j]) * d;
      for (int i = 0; i < d; ++i) total[i] += e[i];
    }
    std::fill(sum.begin(), sum.end(), 0.f);
    for (int j = 0; j < len; ++j) {
      const int32_t target = set[j];
      const float* e = p.in + static_cast<int64_t>(target) * d;
      for (int i = 0; i < d; ++i) h[i] = (total[i] - e[i]) * inv;
      float* g = grads.data() + static_cast<int64_t>(j) * d;
      std::fill(g, g + d, 0.f);
      if (!p.shared) {
        for (int k = 0; k < draws; ++k) {
          noise[k] = draw(static_cast<uint64_t>(j + 1) * 0x10000ULL + k);
        }
      }
      for (int k = -1; k < draws; ++k) {
        const int32_t row = k < 0 ? target : noise[k];
        if (k >= 0 && row == target) continue;
        float* u = p.out + static_cast<int64_t>(row) * d;
        const float f = Dot(h.data(), u, d);
        // Descent step on softplus(-f) (positive) or w * softplus(f) (noise).
        const float step = k < 0 ? (1.f - Sigmoid(f)) * lr : -weight * Sigmoid(f) * lr;
        if (log_loss) loss += k < 0 ? Softplus(-f) : weight * Softplus(f);
        for (int i = 0; i < d; ++i) {
          g[i] += step * u[i];
          u[i] += step * h[i];
        }
      }
      for (int i = 0; i < d; ++i) sum[i] += g[i];
      if (log_loss) ++scored;
    }
    const float a = p.word2vec_update ? 1.f : inv;
    for (int j = 0; j < len; ++j) {
      float* e = p.in + static_cast<int64_t>(set[j]) * d;
      const float* g = grads.data() + static_cast<int64_t>(j) * d;
      for (int i = 0; i < d; ++i) e[i] += a * (sum[i] - g[i]);
    }
  }
  return {loss, scored};
}

class CbowEpochOp : public OpKernel {
 public:
  explicit CbowEpochOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("negatives", &negatives_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("shared_negatives", &shared_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("word2vec_update", &word2vec_update_));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("threads", &threads_));
    OP_REQUIRES(ctx, negatives_ >= 1, errors::InvalidArgument("negatives must be >= 1"));
    OP_REQUIRES(ctx, shared_ >= 0, errors::InvalidArgument("shared_negatives must be >= 0"));
    OP_REQUIRES(ctx, threads_ >= 1, errors::InvalidArgument("threads must be >= 1"));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& in = ctx->input(0);
    const Tensor& out = ctx->input(1);
    const Tensor& ids = ctx->input(2);
    const Tensor& shapes = ctx->input(3);
    const Tensor& table = ctx->input(4);
    const Tensor& rates = ctx->input(5);
    const Tensor& key = ctx->input(6);
    OP_REQUIRES(ctx, TensorShapeUtils::IsMatrix(in.shape()) && in.shape() == out.shape(),
                errors::InvalidArgument("input_embeddings and output_embeddings must be "
                                        "[vocab, dim] of one shape, got ",
                                        in.shape().DebugString(), " and ",
                                        out.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsVector(ids.shape()),
                errors::InvalidArgument("ids must be a vector, got ", ids.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsMatrix(shapes.shape()) && shapes.dim_size(1) == 2,
                errors::InvalidArgument("shapes must be [batches, 2], got ",
                                        shapes.shape().DebugString()));
    OP_REQUIRES(ctx, TensorShapeUtils::IsVector(table.shape()) && table.NumElements() > 0,
                errors::InvalidArgument("noise_table must be a non-empty vector, got ",
                                        table.shape().DebugString()));
    OP_REQUIRES(ctx, rates.NumElements() == 2 && key.NumElements() == 2,
                errors::InvalidArgument("learning_rates and key must have 2 values each, got ",
                                        rates.NumElements(), " and ", key.NumElements()));
    const int64_t vocab = in.dim_size(0);
    const int dim = static_cast<int>(in.dim_size(1));
    const auto ids_flat = ids.flat<int32_t>();
    const auto table_flat = table.flat<int32_t>();
    const auto shape_mat = shapes.matrix<int32_t>();

    Plan plan;
    int64_t offset = 0;
    for (int64_t b = 0; b < shapes.dim_size(0); ++b) {
      const int32_t rows = shape_mat(b, 0), len = shape_mat(b, 1);
      OP_REQUIRES(ctx, rows >= 0 && len >= 2,
                  errors::InvalidArgument("shapes[", b, "] = (", rows, ", ", len,
                                          "): batches need rows >= 0 and sets of >= 2"));
      for (int32_t r = 0; r < rows; ++r, offset += len) {
        plan.start.push_back(offset);
        plan.length.push_back(len);
      }
    }
    OP_REQUIRES(ctx, offset == ids.NumElements(),
                errors::InvalidArgument("shapes cover ", offset, " ids but ids has ",
                                        ids.NumElements()));
    for (int64_t i = 0; i < ids.NumElements(); ++i) {
      OP_REQUIRES(ctx, ids_flat(i) >= 0 && ids_flat(i) < vocab,
                  errors::InvalidArgument("ids[", i, "] = ", ids_flat(i),
                                          " is outside the vocabulary [0, ", vocab, ")"));
    }
    for (int64_t i = 0; i < table.NumElements(); ++i) {
      OP_REQUIRES(ctx, table_flat(i) >= 0 && table_flat(i) < vocab,
                  errors::InvalidArgument("noise_table[", i, "] = ", table_flat(i),
                                          " is outside the vocabulary [0, ", vocab, ")"));
    }

    // The tables are updated in place when their buffers are not shared, else copied.
    Tensor* new_in = nullptr;
    Tensor* new_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({0}, 0, in.shape(), &new_in));
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({1}, 1, out.shape(), &new_out));
    if (new_in->data() != in.data()) std::copy_n(in.flat<float>().data(), in.NumElements(),
                                                 new_in->flat<float>().data());
    if (new_out->data() != out.data()) std::copy_n(out.flat<float>().data(), out.NumElements(),
                                                   new_out->flat<float>().data());
    Tensor* loss_out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({}), &loss_out));

    const auto key_flat = key.flat<int64_t>();
    const Params params{dim, negatives_, shared_, word2vec_update_, ids_flat.data(),
                        table_flat.data(), table.NumElements(),
                        Mix(Mix(static_cast<uint64_t>(key_flat(0))) ^
                            static_cast<uint64_t>(key_flat(1))),
                        new_in->flat<float>().data(), new_out->flat<float>().data()};
    const float lr_begin = rates.flat<float>()(0), lr_end = rates.flat<float>()(1);
    const int64_t sets = static_cast<int64_t>(plan.start.size());
    const int threads = static_cast<int>(std::min<int64_t>(threads_, std::max<int64_t>(sets, 1)));
    // Range t starts at the first set whose first id reaches t/threads of the ids.
    std::vector<int64_t> bounds(threads + 1, sets);
    bounds[0] = 0;
    for (int t = 1; t < threads; ++t) {
      bounds[t] = std::lower_bound(plan.start.begin(), plan.start.end(),
                                   offset * t / threads) - plan.start.begin();
    }
    std::vector<std::pair<double, int64_t>> parts(threads, {0.0, 0});
    auto work = [&](int t) {
      if (bounds[t] < bounds[t + 1]) {
        parts[t] = TrainRange(params, plan, bounds[t], bounds[t + 1], lr_begin, lr_end);
      }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& thread : pool) thread.join();
    double loss = 0.0;
    int64_t scored = 0;
    for (const auto& part : parts) {
      loss += part.first;
      scored += part.second;
    }
    loss_out->scalar<float>()() = scored ? static_cast<float>(loss / scored) : 0.f;
  }

 private:
  int negatives_, shared_, threads_;
  bool word2vec_update_;
};

}  // namespace

REGISTER_OP("CbowEpoch")
    .Input("input_embeddings: float")
    .Input("output_embeddings: float")
    .Input("ids: int32")
    .Input("shapes: int32")
    .Input("noise_table: int32")
    .Input("learning_rates: float")
    .Input("key: int64")
    .Output("new_input_embeddings: float")
    .Output("new_output_embeddings: float")
    .Output("loss: float")
    .Attr("negatives: int = 5")
    .Attr("shared_negatives: int = 0")
    .Attr("word2vec_update: bool = true")
    .Attr("threads: int = 2")
    .SetIsStateful()
    .SetShapeFn([](::tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(1));
      c->set_output(2, c->Scalar());
      return ::tensorflow::OkStatus();
    })
    .Doc("One epoch of CBOW negative-sampling SGD over sets (tfrs_emb/models/cbow_kernel.cc).");

REGISTER_KERNEL_BUILDER(Name("CbowEpoch").Device(DEVICE_CPU), CbowEpochOp);
