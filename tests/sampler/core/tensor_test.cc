#include "sampler/core/tensor.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace entroserve {
namespace {

using ::testing::HasSubstr;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool IsHalfNaN(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0; }
bool IsBFloat16NaN(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0; }

// --- IEEE binary16 -----------------------------------------------------------

TEST(HalfTest, KnownBitPatterns) {
  struct Case {
    uint16_t bits;
    float value;
  };
  const Case cases[] = {
      {0x3c00, 1.0f},
      {0xc000, -2.0f},
      {0x7bff, 65504.0f},                 // largest finite
      {0x0400, 6.103515625e-05f},         // smallest normal, 2^-14
      {0x0001, 5.9604644775390625e-08f},  // smallest subnormal, 2^-24
      {0x03ff, 6.097555160522461e-05f},   // largest subnormal, 1023 * 2^-24
      {0x8001, -5.9604644775390625e-08f},
      {0x3555, 0.333251953125f},
      {0x0000, 0.0f},
      {0x7c00, kInf},
      {0xfc00, -kInf},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << std::hex << c.bits);
    EXPECT_EQ(Bits(HalfToFloat(c.bits)), Bits(c.value));
    EXPECT_EQ(FloatToHalf(c.value), c.bits);
  }
  EXPECT_EQ(Bits(HalfToFloat(0x8000)), Bits(-0.0f));
  EXPECT_EQ(FloatToHalf(-0.0f), 0x8000);
}

TEST(HalfTest, NaNStaysNaN) {
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7e00)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0x7c01)));
  EXPECT_TRUE(std::isnan(HalfToFloat(0xfe00)));
  EXPECT_TRUE(IsHalfNaN(FloatToHalf(kNaN)));
  EXPECT_TRUE(IsHalfNaN(FloatToHalf(-kNaN)));
}

TEST(HalfTest, EveryPatternRoundTrips) {
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    const uint16_t bits = static_cast<uint16_t>(h);
    const float f = HalfToFloat(bits);
    if (IsHalfNaN(bits)) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(IsHalfNaN(FloatToHalf(f))) << h;
    } else {
      ASSERT_EQ(FloatToHalf(f), bits) << std::hex << h;
    }
  }
}

TEST(HalfTest, RoundsToNearestEven) {
  // Halfway between 1 (0x3c00, even) and 1 + 2^-10 (0x3c01): down to even.
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f), 0x3c00);
  // Halfway between 0x3c01 (odd) and 0x3c02: up to even.
  EXPECT_EQ(FloatToHalf(1.0f + 3 * 0x1p-11f), 0x3c02);
  // Just above halfway: up.
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f + 0x1p-20f), 0x3c01);
  // Just below halfway: down.
  EXPECT_EQ(FloatToHalf(1.0f + 0x1p-11f - 0x1p-20f), 0x3c00);
  // The overflow threshold: 65520 is halfway from 65504 (odd) to 2^16.
  EXPECT_EQ(FloatToHalf(65519.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);
  EXPECT_EQ(FloatToHalf(1e10f), 0x7c00);
  EXPECT_EQ(FloatToHalf(-1e10f), 0xfc00);
  // Subnormals: 2^-25 is halfway from 0 (even) to 2^-24; 3 * 2^-25 is
  // halfway from 0x0001 (odd) to 0x0002.
  EXPECT_EQ(FloatToHalf(0x1p-25f), 0x0000);
  EXPECT_EQ(FloatToHalf(0x1p-25f + 0x1p-40f), 0x0001);
  EXPECT_EQ(FloatToHalf(3 * 0x1p-25f), 0x0002);
  EXPECT_EQ(FloatToHalf(5 * 0x1p-25f), 0x0002);
  EXPECT_EQ(FloatToHalf(1e-10f), 0x0000);
  // Rounding up from the largest subnormal gives the smallest normal.
  EXPECT_EQ(FloatToHalf(0x1p-14f - 0x1p-26f), 0x0400);
}

// --- bfloat16 ------------------------------------------------------------------

TEST(BFloat16Test, KnownBitPatterns) {
  struct Case {
    uint16_t bits;
    float value;
  };
  const Case cases[] = {
      {0x3f80, 1.0f},         {0xc000, -2.0f}, {0x7f7f, 3.3895313892515355e38f},  // largest finite
      {0x0080, 0x1p-126f},                                                        // smallest normal
      {0x0001, 0x1p-133f},  // smallest subnormal
      {0x3eab, 0.333984375f}, {0x0000, 0.0f},  {0x7f80, kInf},
      {0xff80, -kInf},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(testing::Message() << std::hex << c.bits);
    EXPECT_EQ(Bits(BFloat16ToFloat(c.bits)), Bits(c.value));
    EXPECT_EQ(FloatToBFloat16(c.value), c.bits);
  }
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(0x7fc0)));
  EXPECT_TRUE(IsBFloat16NaN(FloatToBFloat16(kNaN)));
  // A NaN whose payload sits in the low 16 bits must not become infinity.
  float low_payload_nan;
  const uint32_t nan_bits = 0x7f800001u;
  std::memcpy(&low_payload_nan, &nan_bits, 4);
  EXPECT_TRUE(IsBFloat16NaN(FloatToBFloat16(low_payload_nan)));
}

TEST(BFloat16Test, EveryPatternRoundTrips) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const uint16_t bits = static_cast<uint16_t>(b);
    const float f = BFloat16ToFloat(bits);
    if (IsBFloat16NaN(bits)) {
      ASSERT_TRUE(std::isnan(f)) << b;
      ASSERT_TRUE(IsBFloat16NaN(FloatToBFloat16(f))) << b;
    } else {
      ASSERT_EQ(FloatToBFloat16(f), bits) << std::hex << b;
    }
  }
}

TEST(BFloat16Test, RoundsToNearestEven) {
  EXPECT_EQ(FloatToBFloat16(1.0f + 0x1p-8f), 0x3f80);      // tie, down to even
  EXPECT_EQ(FloatToBFloat16(1.0f + 3 * 0x1p-8f), 0x3f82);  // tie, up to even
  EXPECT_EQ(FloatToBFloat16(1.0f + 0x1p-8f + 0x1p-20f), 0x3f81);
  EXPECT_EQ(FloatToBFloat16(std::numeric_limits<float>::max()), 0x7f80);  // to inf
}

// --- DecodeTensor / EncodeTensor ---------------------------------------------

TEST(DecodeTensorTest, DecodesEveryDtype) {
  const std::vector<float> values = {1.0f, -2.0f, 0.5f, -kInf, 65504.0f};
  for (DType dtype : {DType::kFloat32, DType::kFloat16, DType::kBFloat16}) {
    SCOPED_TRACE(DTypeName(dtype));
    const std::string bytes = EncodeTensor(dtype, values);
    ASSERT_EQ(bytes.size(), values.size() * ElementSize(dtype));
    std::vector<float> out;
    ASSERT_TRUE(DecodeTensor(dtype, bytes, 5, "logits", &out).ok());
    ASSERT_EQ(out.size(), 5u);
    for (size_t i = 0; i < 4; ++i) EXPECT_EQ(out[i], values[i]) << i;
  }
}

TEST(EncodeTensorTest, BFloat16EncodingEqualsTheScalarConversionForManyPatterns) {
  // EncodeTensor has its own branch-free loop: bit-identical to
  // FloatToBFloat16 for 2^20 float patterns spread over the whole range
  // (every 4096th, plus neighbours of every rounding tie), NaNs, infinities
  // and signed zeros included.
  std::vector<float> values;
  for (uint64_t u = 0; u <= 0xffffffffu; u += 4096) {
    for (uint32_t delta : {0u, 0x7fffu, 0x8000u, 0x8001u}) {
      const uint32_t bits = static_cast<uint32_t>(u) + delta;
      float f;
      std::memcpy(&f, &bits, 4);
      values.push_back(f);
    }
  }
  const std::string bytes = EncodeTensor(DType::kBFloat16, values);
  ASSERT_EQ(bytes.size(), 2 * values.size());
  char* out = nullptr;
  std::string copy(bytes.size() + 1, '\0');
  out = copy.data() + 1;  // an unaligned destination gives the same bytes
  EncodeTensorTo(DType::kBFloat16, values, out);
  ASSERT_EQ(std::string(out, bytes.size()), bytes);
  for (size_t i = 0; i < values.size(); ++i) {
    uint16_t got;
    std::memcpy(&got, bytes.data() + 2 * i, 2);
    ASSERT_EQ(got, FloatToBFloat16(values[i])) << "pattern " << std::hex << i;
  }
}

TEST(DecodeTensorTest, ReadsLittleEndianBytes) {
  const std::string half_one("\x00\x3c", 2);
  const std::string bf16_minus_two("\x00\xc0", 2);
  const std::string f32_one("\x00\x00\x80\x3f", 4);
  std::vector<float> out;
  ASSERT_TRUE(DecodeTensor(DType::kFloat16, half_one, 1, "x", &out).ok());
  EXPECT_EQ(out[0], 1.0f);
  ASSERT_TRUE(DecodeTensor(DType::kBFloat16, bf16_minus_two, 1, "x", &out).ok());
  EXPECT_EQ(out[0], -2.0f);
  ASSERT_TRUE(DecodeTensor(DType::kFloat32, f32_one, 1, "x", &out).ok());
  EXPECT_EQ(out[0], 1.0f);
}

TEST(DecodeTensorTest, SizeMismatchIsInvalidArgumentNamingTheField) {
  std::vector<float> out;
  const absl::Status status =
      DecodeTensor(DType::kFloat16, std::string(7, '\0'), 4, "rows[3].logits", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("rows[3].logits"));
  EXPECT_THAT(status.message(), HasSubstr("7 bytes"));
  EXPECT_THAT(status.message(), HasSubstr("FLOAT16"));
  EXPECT_THAT(status.message(), HasSubstr("8 bytes"));
}

TEST(DecodeTensorTest, DecodesEveryHalfAndBFloat16PatternLikeTheScalarConversion) {
  // DecodeTensor has its own vectorised conversion: bit-identical to
  // HalfToFloat / BFloat16ToFloat for all 65536 patterns, NaN payloads and
  // signed zeros included, at every offset of the vector loop.
  std::string bytes;
  for (uint32_t h = 0; h <= 0xffff; ++h) {
    bytes.push_back(static_cast<char>(h & 0xff));
    bytes.push_back(static_cast<char>(h >> 8));
  }
  for (size_t skip : {0, 1, 3}) {  // misaligned starts and odd tails
    const std::string_view view = std::string_view(bytes).substr(2 * skip);
    const int64_t numel = static_cast<int64_t>(view.size() / 2);
    std::vector<float> half, bf16;
    ASSERT_TRUE(DecodeTensor(DType::kFloat16, view, numel, "x", &half).ok());
    ASSERT_TRUE(DecodeTensor(DType::kBFloat16, view, numel, "x", &bf16).ok());
    for (int64_t i = 0; i < numel; ++i) {
      const uint16_t bits = static_cast<uint16_t>(i + skip);
      ASSERT_EQ(Bits(half[i]), Bits(HalfToFloat(bits))) << std::hex << bits;
      ASSERT_EQ(Bits(bf16[i]), Bits(BFloat16ToFloat(bits))) << std::hex << bits;
    }
  }
}

TEST(DecodeTensorTest, NegativeElementCountIsInvalidArgument) {
  std::vector<float> out;
  const absl::Status status = DecodeTensor(DType::kFloat32, "", -4, "rows[0].logits", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("rows[0].logits"));
  EXPECT_THAT(status.message(), HasSubstr("negative"));
}

TEST(DecodeTensorTest, HugeElementCountDoesNotOverflowIntoAMatch) {
  // 2^62 + 1 FLOAT32 elements are 2^64 + 4 bytes, 4 once wrapped to 64 bits:
  // the check must not accept 4 bytes (and then resize to 2^62 floats).
  std::vector<float> out;
  const absl::Status status = DecodeTensor(DType::kFloat32, std::string(4, '\0'),
                                           (int64_t{1} << 62) + 1, "attention", &out);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("attention.data has 4 bytes"));
  EXPECT_TRUE(out.empty());
}

TEST(DecodeTensorTest, EmptyTensorIsFine) {
  std::vector<float> out = {1.0f};
  EXPECT_TRUE(DecodeTensor(DType::kFloat32, "", 0, "x", &out).ok());
  EXPECT_TRUE(out.empty());
}

// --- CheckLogits / CheckAttention ----------------------------------------------

TEST(CheckLogitsTest, NaNIsRejectedWithItsIndex) {
  const std::vector<float> z = {0.0f, 1.0f, kNaN, 2.0f};
  const absl::Status status = CheckLogits(z, "rows[0].logits");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("rows[0].logits[2]"));
  EXPECT_THAT(status.message(), HasSubstr("NaN"));
}

TEST(CheckLogitsTest, PositiveInfinityIsRejectedWithItsIndex) {
  std::vector<float> z(2000, 0.0f);
  z[1234] = kInf;
  const absl::Status status = CheckLogits(z, "logits");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("logits[1234]"));
  EXPECT_THAT(status.message(), HasSubstr("+inf"));
}

TEST(CheckLogitsTest, FirstBadIndexIsNamed) {
  const std::vector<float> z = {0.0f, kInf, kNaN};
  EXPECT_THAT(CheckLogits(z, "logits").message(), HasSubstr("logits[1]"));
}

TEST(CheckLogitsTest, AllMaskedIsRejected) {
  const std::vector<float> z(5, -kInf);
  const absl::Status status = CheckLogits(z, "rows[1].logits");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("rows[1].logits"));
  EXPECT_THAT(status.message(), HasSubstr("no finite"));
}

TEST(CheckLogitsTest, EmptyIsRejected) {
  const absl::Status status = CheckLogits({}, "rows[2].logits");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("rows[2].logits is empty"));
}

TEST(CheckLogitsTest, NegativeInfinityIsAMaskedToken) {
  const std::vector<float> z = {-kInf, 3.0f, -kInf, std::numeric_limits<float>::max(),
                                std::numeric_limits<float>::lowest()};
  EXPECT_TRUE(CheckLogits(z, "logits").ok());
}

TEST(CheckAttentionTest, OnlyFiniteScoresPass) {
  EXPECT_TRUE(CheckAttention(std::vector<float>{0.0f, -3.0f, 1e30f}, "attention").ok());
  for (float bad : {kNaN, kInf, -kInf}) {
    const absl::Status status = CheckAttention(std::vector<float>{0.0f, bad}, "rows[4].attention");
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("rows[4].attention[1]"));
  }
}

}  // namespace
}  // namespace entroserve
