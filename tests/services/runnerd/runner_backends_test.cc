// The sampler backends and the runner's edge, in process: the local backend
// gives what samplerd's own row code gives for the same row sent over the
// wire; the remote backend's wire form round-trips; a remote samplerd that
// cannot be reached is waited for within the deadline only; a request that is
// not valid UTF-8 is refused naming the field.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "runner/v1/runner.pb.h"
#include "sampler/core/tensor.h"
#include "sampler/registry.h"
#include "services/runnerd/local_sampler_backend.h"
#include "services/runnerd/remote_sampler_backend.h"
#include "services/runnerd/runner_convert.h"
#include "services/runnerd/sharded_sampler_backend.h"
#include "services/samplerd/row_sampling.h"
#include "services/wire/row_convert.h"
#include "services/wire/sampler_convert.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kVocab = 300;
constexpr int kHeads = 4;

struct OwnedRow {
  std::vector<float> logits;
  std::vector<float> attention;
  std::vector<int32_t> prompt;
  Row row;
};

// A row of `config` at `step` with random logits and attention, peaked on a
// few tokens so that penalties and modes matter.
OwnedRow RandomRow(const SamplerConfig& config, int64_t step, uint64_t seed,
                   const SamplerState& state) {
  OwnedRow owned;
  std::mt19937_64 rng(seed * 7919 + static_cast<uint64_t>(step));
  std::normal_distribution<float> normal(0.0f, 2.0f);
  owned.logits.resize(kVocab);
  for (int i = 0; i < kVocab; ++i) owned.logits[i] = normal(rng) + (i % 37 == 0 ? 5.0f : 0.0f);
  const int keys = 10 + static_cast<int>(step);
  owned.attention.resize(static_cast<size_t>(kHeads * keys));
  for (float& a : owned.attention) a = normal(rng);
  owned.prompt = {1, 2, 3, 37, 74};
  Row& row = owned.row;
  row.sequence_id = absl::StrCat("seq-", seed);
  row.step = step;
  row.config = config;
  row.seed = seed;
  row.state = state;
  row.logits = owned.logits;
  row.attention = owned.attention;
  row.heads = kHeads;
  row.keys = keys;
  row.special_tokens.clarifying_question = 63;
  row.special_tokens.pause = 64;
  row.special_tokens.eos = 0;
  if (step == 0) row.appended_tokens = owned.prompt;
  return owned;
}

// The rows of `owned`, their spans pointing at the vectors' current storage.
std::vector<Row> RowsOf(std::vector<OwnedRow>& owned) {
  std::vector<Row> rows;
  for (OwnedRow& o : owned) {
    o.row.logits = o.logits;
    o.row.attention = o.attention;
    if (o.row.step == 0) o.row.appended_tokens = o.prompt;
    rows.push_back(o.row);
  }
  return rows;
}

// What samplerd answers for the rows: the wire form, SampleOneRow, back.
std::vector<RowResult> ThroughSamplerdCode(absl::Span<const Row> rows, DType dtype) {
  sampler::v1::SampleRequest request;
  EncodeRows(rows, dtype, &request);
  sampler::v1::SampleResponse response;
  for (int i = 0; i < request.rows_size(); ++i) {
    SampleOneRow(request.rows(i), i, response.add_results());
  }
  absl::StatusOr<std::vector<RowResult>> results = ResponseToResults(rows, response);
  EXPECT_TRUE(results.ok()) << results.status();
  return results.ok() ? *results : std::vector<RowResult>();
}

void ExpectSameResult(const RowResult& a, const RowResult& b) {
  ASSERT_EQ(a.status, b.status);
  if (!a.status.ok()) return;
  EXPECT_EQ(a.output.token, b.output.token);
  EXPECT_EQ(a.output.mode, b.output.mode);
  EXPECT_EQ(a.output.inserted, b.output.inserted);
  EXPECT_EQ(a.output.logprob, b.output.logprob);
  EXPECT_EQ(a.output.signals.entropy, b.output.signals.entropy);
  EXPECT_EQ(a.output.signals.attn_entropy, b.output.signals.attn_entropy);
  EXPECT_EQ(a.output.params.temperature, b.output.params.temperature);
  EXPECT_EQ(a.output.params.top_k, b.output.params.top_k);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_EQ(a.state.sampler, b.state.sampler);
  EXPECT_EQ(a.state.next_step, b.state.next_step);
  EXPECT_EQ(a.state.recent_tokens, b.state.recent_tokens);
  EXPECT_EQ(a.state.alpha_window, b.state.alpha_window);
  EXPECT_EQ(a.state.last_inserted, b.state.last_inserted);
  EXPECT_EQ(a.state.mirostat_mu, b.state.mirostat_mu);
}

TEST(LocalSamplerBackendTest, EverySamplerGivesWhatSamplerdsCodeGivesOverTheWire) {
  for (const DType dtype : {DType::kBFloat16, DType::kFloat32}) {
    LocalSamplerBackend local(dtype);
    for (const SamplerDescription& description : ListSamplers()) {
      SCOPED_TRACE(absl::StrCat(description.name, " ", DTypeName(dtype)));
      SamplerState local_state;
      SamplerState wire_state;
      for (int64_t step = 0; step < 6; ++step) {
        OwnedRow a = RandomRow(description.defaults, step, 42, local_state);
        OwnedRow b = RandomRow(description.defaults, step, 42, wire_state);
        absl::StatusOr<std::vector<RowResult>> got = local.Sample({&a.row, 1}, {});
        ASSERT_TRUE(got.ok()) << got.status();
        std::vector<RowResult> want = ThroughSamplerdCode({&b.row, 1}, dtype);
        ASSERT_EQ(got->size(), 1u);
        ASSERT_EQ(want.size(), 1u);
        ASSERT_TRUE((*got)[0].status.ok()) << (*got)[0].status;
        ExpectSameResult((*got)[0], want[0]);
        local_state = (*got)[0].state;
        wire_state = want[0].state;
      }
    }
  }
}

// Rows whose logits are bfloat16 bits (a BF16 model's decode steps, as the
// engine hands them on) sample as their float values do, whatever the wire
// dtype the backend rounds through.
TEST(LocalSamplerBackendTest, Bf16LogitsSampleAsTheirFloatValues) {
  for (const DType dtype : {DType::kBFloat16, DType::kFloat32, DType::kFloat16}) {
    LocalSamplerBackend local(dtype);
    for (const SamplerDescription& description : ListSamplers()) {
      SCOPED_TRACE(absl::StrCat(description.name, " ", DTypeName(dtype)));
      OwnedRow a = RandomRow(description.defaults, 0, 7, SamplerState());
      std::vector<float> rounded;
      RoundThroughWire(DType::kBFloat16, a.logits, &rounded);
      a.logits = rounded;
      a.row.logits = a.logits;
      std::vector<uint16_t> bits(rounded.size());
      for (size_t i = 0; i < bits.size(); ++i) bits[i] = FloatToBFloat16(rounded[i]);
      Row b = a.row;
      b.logits = {};
      b.logits_bf16 = bits;
      for (bool bfloat16_values : {false, true}) {  // the rounding path and the direct one
        SampleControl control;
        control.bfloat16_values = bfloat16_values;
        absl::StatusOr<std::vector<RowResult>> want = local.Sample({&a.row, 1}, control);
        absl::StatusOr<std::vector<RowResult>> got = local.Sample({&b, 1}, control);
        ASSERT_TRUE(want.ok() && got.ok());
        ASSERT_TRUE((*got)[0].status.ok()) << (*got)[0].status;
        ExpectSameResult((*got)[0], (*want)[0]);
      }
    }
  }
}

TEST(LocalSamplerBackendTest, BadRowsGetSamplerdsInBandErrors) {
  LocalSamplerBackend local(DType::kBFloat16);
  OwnedRow nan = RandomRow(GreedyConfig(), 0, 1, SamplerState());
  nan.logits[3] = std::numeric_limits<float>::quiet_NaN();
  OwnedRow stale = RandomRow(ChainConfig(), 2, 1, SamplerState());
  stale.row.state.sampler = "chain";
  stale.row.state.next_step = 1;
  OwnedRow missing = RandomRow(MirostatV2Config(), 3, 1, SamplerState());
  OwnedRow good = RandomRow(GreedyConfig(), 0, 1, SamplerState());
  const std::vector<Row> rows = {nan.row, stale.row, missing.row, good.row};
  absl::StatusOr<std::vector<RowResult>> got = local.Sample(rows, {});
  ASSERT_TRUE(got.ok());
  const std::vector<RowResult> want = ThroughSamplerdCode(rows, DType::kBFloat16);
  ASSERT_EQ(got->size(), 4u);
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ((*got)[i].status, want[i].status);
  }
  EXPECT_THAT(std::string((*got)[0].status.message()), StartsWith("rows[0].logits[3]"));
  EXPECT_EQ((*got)[1].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ((*got)[2].status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE((*got)[3].status.ok());
}

TEST(LocalSamplerBackendTest, RowsSampledOnWorkersEqualRowsSampledInTurn) {
  // A batch of every sampler, three seeds each, plus a bad row in the middle:
  // on 4 workers each slot gets the result (or error) it gets on one thread.
  LocalSamplerBackend serial(DType::kBFloat16);
  LocalSamplerBackend parallel(DType::kBFloat16, /*workers=*/4);
  std::vector<OwnedRow> owned;
  for (const SamplerDescription& description : ListSamplers()) {
    for (uint64_t seed : {3, 4, 5}) {
      owned.push_back(RandomRow(description.defaults, 0, seed, SamplerState()));
    }
  }
  owned.push_back(RandomRow(GreedyConfig(), 0, 9, SamplerState()));
  owned.back().logits[5] = std::numeric_limits<float>::infinity();
  std::rotate(owned.begin() + owned.size() / 2, owned.end() - 1, owned.end());  // to the middle
  const std::vector<Row> rows = RowsOf(owned);
  absl::StatusOr<std::vector<RowResult>> want = serial.Sample(rows, {});
  ASSERT_TRUE(want.ok());
  int errors = 0;
  for (int repeat = 0; repeat < 5; ++repeat) {
    absl::StatusOr<std::vector<RowResult>> got = parallel.Sample(rows, {});
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      SCOPED_TRACE(absl::StrCat("row ", i, " repeat ", repeat));
      ExpectSameResult((*got)[i], (*want)[i]);
      errors += !(*got)[i].status.ok();
    }
  }
  EXPECT_EQ(errors, 5);  // the bad row, once per repeat
}

// A backend whose every call fails with `status`, and which counts the rows
// it was given.
class FailingBackend final : public SamplerBackend {
 public:
  explicit FailingBackend(
      absl::Status status = absl::UnavailableError("samplerd at 127.0.0.1:1 is unreachable"))
      : status_(std::move(status)) {}
  absl::StatusOr<std::vector<RowResult>> Sample(absl::Span<const Row> rows,
                                                const SampleControl&) override {
    rows_seen += static_cast<int>(rows.size());
    return status_;
  }
  std::string Describe() const override { return "failing"; }
  int rows_seen = 0;

 private:
  absl::Status status_;
};

TEST(ShardedSamplerBackendTest, ShardsGiveTheRowsResultsInOrderWithTheirOwnIndices) {
  std::vector<OwnedRow> owned;
  for (uint64_t seed = 1; seed <= 7; ++seed) {
    owned.push_back(RandomRow(EntropixConfig(), 0, seed, SamplerState()));
  }
  owned[4].logits[2] = std::numeric_limits<float>::quiet_NaN();
  const std::vector<Row> rows = RowsOf(owned);
  LocalSamplerBackend whole(DType::kBFloat16);
  absl::StatusOr<std::vector<RowResult>> want = whole.Sample(rows, {});
  ASSERT_TRUE(want.ok());
  std::vector<std::unique_ptr<SamplerBackend>> shards;
  for (int i = 0; i < 3; ++i)
    shards.push_back(std::make_unique<LocalSamplerBackend>(DType::kBFloat16));
  ShardedSamplerBackend sharded(std::move(shards), /*min_rows_per_shard=*/2);
  EXPECT_EQ(sharded.ShardCount(1), 1);
  EXPECT_EQ(sharded.ShardCount(3), 1);
  EXPECT_EQ(sharded.ShardCount(4), 2);
  EXPECT_EQ(sharded.ShardCount(7), 3);
  EXPECT_EQ(sharded.ShardCount(64), 3);
  absl::StatusOr<std::vector<RowResult>> got = sharded.Sample(rows, {});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameResult((*got)[i], (*want)[i]);  // statuses included
  }
  // Row 4 went out as row 0 of the third shard (rows 4-6): named as the step's row 4.
  EXPECT_THAT(std::string((*got)[4].status.message()), StartsWith("rows[4].logits[2]"));
}

TEST(ShardedSamplerBackendTest, AShardThatFailsFailsTheStepWithItsStatus) {
  std::vector<std::unique_ptr<SamplerBackend>> shards;
  shards.push_back(std::make_unique<LocalSamplerBackend>(DType::kBFloat16));
  auto failing = std::make_unique<FailingBackend>();
  FailingBackend* failing_ptr = failing.get();
  shards.push_back(std::move(failing));
  ShardedSamplerBackend sharded(std::move(shards), 1);
  std::vector<OwnedRow> owned;
  for (uint64_t seed = 1; seed <= 4; ++seed)
    owned.push_back(RandomRow(GreedyConfig(), 0, seed, {}));
  const std::vector<Row> rows = RowsOf(owned);
  absl::StatusOr<std::vector<RowResult>> got = sharded.Sample(rows, {});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("unreachable"));
  EXPECT_EQ(failing_ptr->rows_seen, 2);
  // One row is never split.
  absl::StatusOr<std::vector<RowResult>> one = sharded.Sample({&rows[0], 1}, {});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(failing_ptr->rows_seen, 2);
}

TEST(ShardedSamplerBackendTest, AStatusResendingCannotFixWinsOverARetryableOne) {
  std::vector<std::unique_ptr<SamplerBackend>> shards;
  shards.push_back(std::make_unique<FailingBackend>());  // UNAVAILABLE
  shards.push_back(std::make_unique<FailingBackend>(
      absl::ResourceExhaustedError("message larger than samplerd's limit")));
  ShardedSamplerBackend sharded(std::move(shards), 1);
  EXPECT_EQ(sharded.Describe(), "failing");  // ModelInfo's sampler: the address alone
  std::vector<OwnedRow> owned;
  for (uint64_t seed = 1; seed <= 2; ++seed)
    owned.push_back(RandomRow(GreedyConfig(), 0, seed, {}));
  const std::vector<Row> rows = RowsOf(owned);
  absl::StatusOr<std::vector<RowResult>> got = sharded.Sample(rows, {});
  EXPECT_EQ(got.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(ShardedSamplerBackendTest, OffsetRowIndexRenamesALeadingRowOrAResultIndex) {
  EXPECT_EQ(OffsetRowIndex(absl::InvalidArgumentError("rows[1].logits[3] is NaN"), 4).message(),
            "rows[5].logits[3] is NaN");
  EXPECT_EQ(OffsetRowIndex(absl::InvalidArgumentError("rows[1].x"), 4).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(OffsetRowIndex(absl::InternalError("stream broke"), 4).message(), "stream broke");
  EXPECT_EQ(
      OffsetRowIndex(absl::InternalError("samplerd returned a bad state: results[2].state x"), 3)
          .message(),
      "samplerd returned a bad state: results[5].state x");
  EXPECT_EQ(OffsetRowIndex(absl::InternalError("see rows[1]"), 3).message(), "see rows[1]");
  EXPECT_EQ(OffsetRowIndex(absl::InvalidArgumentError("rows[2].x"), 0).message(), "rows[2].x");
}

TEST(LocalSamplerBackendTest, Bfloat16RoundingIsTheWiresAndFloat32KeepsTheValues) {
  const std::vector<float> values = {1.0f, 1.00390625f, 3.14159265f, -2.7182818f, -1e30f};
  std::vector<float> rounded;
  RoundThroughWire(DType::kBFloat16, values, &rounded);
  ASSERT_EQ(rounded.size(), values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_EQ(rounded[i], BFloat16ToFloat(FloatToBFloat16(values[i])));
  }
  EXPECT_NE(rounded[2], values[2]);
  RoundThroughWire(DType::kFloat32, values, &rounded);
  EXPECT_EQ(rounded, values);
}

TEST(RemoteSamplerBackendTest, TheWireFormRoundTrips) {
  OwnedRow a = RandomRow(EntropixConfig(), 0, 3, SamplerState());
  sampler::v1::SampleRequest request;
  EncodeRows({&a.row, 1}, DType::kBFloat16, &request);
  ASSERT_EQ(request.rows_size(), 1);
  const sampler::v1::SampleRow& row = request.rows(0);
  EXPECT_EQ(row.sequence_id(), "seq-3");
  EXPECT_EQ(row.spec().name(), "entropix");
  EXPECT_TRUE(row.spec().entropix().has_temperature());  // every field set
  EXPECT_EQ(row.logits().dtype(), sampler::v1::DTYPE_BFLOAT16);
  EXPECT_EQ(row.logits().data().size(), 2u * kVocab);
  EXPECT_EQ(row.attention().shape(0), kHeads);
  EXPECT_EQ(row.attention().shape(1), 10);
  EXPECT_EQ(row.special_tokens().clarifying_question(), 63);
  EXPECT_EQ(row.appended_tokens_size(), 5);
  EXPECT_FALSE(row.has_state());  // an empty state is not sent

  sampler::v1::SampleResponse short_response;
  EXPECT_EQ(ResponseToResults({&a.row, 1}, short_response).status().code(),
            absl::StatusCode::kInternal);
}

TEST(RemoteSamplerBackendTest, AnUnreachableSamplerdIsWaitedForUntilTheDeadlineOnly) {
  RemoteSamplerOptions options;
  options.address = "127.0.0.1:1";  // nothing listens on port 1
  RemoteSamplerBackend remote(options);
  OwnedRow a = RandomRow(GreedyConfig(), 0, 1, SamplerState());
  SampleControl control;
  control.deadline = absl::Now() + absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::vector<RowResult>> got = remote.Sample({&a.row, 1}, control);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable) << got.status();
  EXPECT_THAT(std::string(got.status().message()), HasSubstr("127.0.0.1:1"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(290));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));

  // `stop` ends the wait at once.
  control.deadline = absl::InfiniteFuture();
  control.stop = [] { return true; };
  got = remote.Sample({&a.row, 1}, control);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace entroserve
