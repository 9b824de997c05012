#include "base/json_text.h"

#include <gtest/gtest.h>

#include <bit>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace warden {
namespace {

namespace json = boost::json;

std::string Number(double d) { return SerializeJson(json::value(d)); }

// Parses `text` with ParseJson, failing the test on a syntax error.
json::value Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  EXPECT_FALSE(ec) << text << ": " << ec.message();
  return v;
}

TEST(JsonTextTest, DoublesAreTheShortestPlainDecimal) {
  EXPECT_EQ(Number(0.0), "0");
  EXPECT_EQ(Number(0.01), "0.01");
  EXPECT_EQ(Number(0.012005), "0.012005");
  EXPECT_EQ(Number(0.0002), "0.0002");
  EXPECT_EQ(Number(0.10198063706), "0.10198063706");
  EXPECT_EQ(Number(0.10198063705999999), "0.10198063705999999");
  EXPECT_EQ(Number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(Number(2.5), "2.5");
  EXPECT_EQ(Number(-1.5), "-1.5");
  EXPECT_EQ(Number(1e-7), "0.0000001");
}

TEST(JsonTextTest, NegativeZeroKeepsItsSign) {
  EXPECT_EQ(Number(-0.0), "-0");
  json::value back = Parse("-0");
  ASSERT_TRUE(back.is_double());
  EXPECT_TRUE(std::signbit(back.get_double()));
  EXPECT_EQ(Parse("0").kind(), json::kind::int64);
}

TEST(JsonTextTest, IntegralDoublesAreWrittenWithoutAFraction) {
  EXPECT_EQ(Number(3.0), "3");
  EXPECT_EQ(Number(9007199254740992.0), "9007199254740992");  // 2^53
  EXPECT_EQ(Number(1e20), "100000000000000000000");
  // Past 2^53 every digit of the integer part is the double's own (its exact value).
  EXPECT_EQ(Number(123456789012345678e3), "123456789012345683968");
}

TEST(JsonTextTest, ExponentNotationOnlyOutsideOneEMinus7ToOneE21) {
  EXPECT_EQ(Number(1e21), "1e+21");
  EXPECT_EQ(Number(1e300), "1e+300");
  EXPECT_EQ(Number(1e-8), "1e-08");
  EXPECT_EQ(Number(5e-324), "5e-324");  // the smallest subnormal
  EXPECT_EQ(Number(std::numeric_limits<double>::max()), "1.7976931348623157e+308");
  EXPECT_EQ(Number(-std::numeric_limits<double>::min()), "-2.2250738585072014e-308");
}

TEST(JsonTextTest, NanAndInfinityAreNeverWrittenAsNumbers) {
  EXPECT_EQ(Number(std::numeric_limits<double>::quiet_NaN()), "null");
  EXPECT_EQ(Number(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(Number(-std::numeric_limits<double>::infinity()), "null");
  json::array a = {1, std::numeric_limits<double>::infinity()};
  EXPECT_EQ(SerializeJson(a), "[1,null]");
}

TEST(JsonTextTest, IntegersStayIntegers) {
  EXPECT_EQ(SerializeJson(json::value(int64_t{42})), "42");
  EXPECT_EQ(SerializeJson(json::value(std::numeric_limits<int64_t>::min())),
            "-9223372036854775808");
  EXPECT_EQ(SerializeJson(json::value(std::numeric_limits<uint64_t>::max())),
            "18446744073709551615");
  EXPECT_EQ(Parse("1796232994453").as_int64(), 1796232994453);
  EXPECT_EQ(Parse("18446744073709551615").as_uint64(), std::numeric_limits<uint64_t>::max());
  EXPECT_TRUE(Parse("1.0").is_double());
}

TEST(JsonTextTest, EveryDoubleComesBackBitIdentical) {
  std::vector<double> values = {0.0,
                                -0.0,
                                0.012005,
                                0.10198063705999999,
                                0.10198063706,
                                1e-7,
                                9.999999999999999e-8,
                                1e21,
                                9.999999999999999e20,
                                5e-324,
                                std::numeric_limits<double>::max(),
                                std::numeric_limits<double>::min(),
                                9007199254740993.0,
                                18446744073709551616.0};
  std::mt19937_64 random(13);
  while (values.size() < 200000) {
    double d = std::bit_cast<double>(random());
    if (std::isfinite(d)) values.push_back(d);
  }
  for (double d : values) {
    std::string text = Number(d);
    json::value back = Parse(text);
    ASSERT_TRUE(back.is_number()) << text;
    EXPECT_EQ(std::bit_cast<uint64_t>(back.to_number<double>()), std::bit_cast<uint64_t>(d))
        << text;
    EXPECT_EQ(text.find('E'), std::string::npos);
  }
}

TEST(JsonTextTest, ReadsNumbersExactlyWhereBoostJsonIsOffByAnUlp) {
  // Boost.JSON 1.81's parser multiplies a 17-digit mantissa by a power of ten in doubles.
  const std::string text = "0.10198063705999999";
  EXPECT_NE(json::parse(text).as_double(), 0.10198063705999999);
  EXPECT_EQ(Parse(text).as_double(), 0.10198063705999999);
  // Any spelling of a number, the old exponent form included.
  EXPECT_EQ(Parse("1.0198063705999999E-1").as_double(), 0.10198063705999999);
  EXPECT_EQ(Parse("1.2005E-2").as_double(), 0.012005);
  EXPECT_EQ(Parse("0E0").as_double(), 0.0);
  EXPECT_EQ(Parse("[1e-400]").as_array()[0].as_double(), 0.0);
  EXPECT_TRUE(std::isinf(Parse("1e400").as_double()));
}

TEST(JsonTextTest, EverythingButDoublesIsWrittenAsBoostJsonWritesIt) {
  const std::string text =
      R"({"name":"a \"quoted\"\nline \u0001 caf\u00e9 \ud83d\ude00","empty":{},"list":[],)"
      R"("nested":[{"k\\ey":[true,false,null,-7,18446744073709551615]}],")" +
      std::string(1000, 'x') + R"(":")" + std::string(700, 'y') + R"("})";
  json::value v = json::parse(text);
  EXPECT_EQ(SerializeJson(v), json::serialize(v));
  EXPECT_EQ(SerializeJson(Parse(text)), json::serialize(v));
}

TEST(JsonTextTest, DoublesInsideDocumentsAndAppend) {
  json::value v = Parse(R"({"costUsd":1.2005E-2,"nodes":[{"costUsd":0E0},{"costUsd":1E-2}]})");
  EXPECT_EQ(SerializeJson(v), R"({"costUsd":0.012005,"nodes":[{"costUsd":0},{"costUsd":0.01}]})");
  std::string out = "x=";
  AppendJson(v.at("costUsd"), out);
  AppendJsonNumber(0.5, out);
  EXPECT_EQ(out, "x=0.0120050.5");
}

TEST(JsonTextTest, SyntaxErrorsAreReportedNotThrown) {
  for (std::string_view bad : {"", "{", "[1,]", "1 2", "{\"a\":1}x", "nan", "01"}) {
    boost::system::error_code ec;
    json::value v = ParseJson(bad, ec);
    EXPECT_TRUE(ec) << bad;
    EXPECT_TRUE(v.is_null()) << bad;
  }
}

}  // namespace
}  // namespace warden
