#include "dag/spec_writer.h"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "base/json_text.h"
#include "dag/spec_parser.h"
#include "test_specs.h"

namespace warden::dag {
namespace {

ExecutionSpec FullSpec() {
  ExecutionSpec spec = testing::Spec({testing::Node("extract"), testing::Node("load", {"extract"}),
                                      testing::Node("audit", {"extract", "load"})},
                                     4, OnFailure::kContinue);
  spec.name = "nightly-etl";
  spec.request_id = "req-42";
  spec.grace_ms = 1500;
  spec.timeout_ms = 60'000;
  NodeSpec& extract = spec.nodes[0];
  extract.argv = {"python3", "extract.py", "--quote=\"x\"", "ünïcode"};
  extract.cwd = "/srv/etl";
  extract.env = {{"MODE", "full"}, {"EMPTY", ""}};
  extract.timeout_ms = 30'000;
  extract.retries = 2;
  extract.cost_per_second_usd = 0.0002;
  extract.grace_ms = 0;  // set to zero is not the same as unset
  extract.user = UserSpec::ByName("etl");
  spec.nodes[1].user = UserSpec::ByUid(0);
  return spec;
}

TEST(SpecWriterTest, RoundTripThroughTextGivesAnEqualSpec) {
  ExecutionSpec original = FullSpec();
  std::string text = boost::json::serialize(ExecutionSpecToJson(original));
  Result<ExecutionSpec> reloaded = ParseExecutionSpec(text);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString() << "\n" << text;
  EXPECT_EQ(*reloaded, original);
}

TEST(SpecWriterTest, RoundTripOfMinimalSpecKeepsDefaultsAndUnsetGrace) {
  ExecutionSpec original = testing::Spec({testing::Node("only")}, 7);
  Result<ExecutionSpec> reloaded = ExecutionSpecFromJson(ExecutionSpecToJson(original));
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ(*reloaded, original);
  EXPECT_FALSE(reloaded->grace_ms);
  EXPECT_FALSE(reloaded->nodes[0].grace_ms);
}

TEST(SpecWriterTest, MaxParallelIsAlwaysWrittenSoReloadDoesNotDependOnTheHost) {
  SpecLimits limits;
  limits.default_max_parallel = 5;
  Result<ExecutionSpec> parsed =
      ParseExecutionSpec(R"({"nodes": [{"id": "a", "argv": ["x"]}]})", limits);
  ASSERT_TRUE(parsed.ok());
  boost::json::value json = ExecutionSpecToJson(*parsed);
  EXPECT_EQ(json.at("maxParallel").to_number<int64_t>(), 5);
  EXPECT_EQ(json.at("onFailure").as_string(), "stop");
  EXPECT_FALSE(json.as_object().contains("graceMs"));
  EXPECT_FALSE(json.at("nodes").at(0).as_object().contains("cwd"));
}

TEST(SpecWriterTest, ApiDocExampleSurvivesParseWriteParse) {
  const char* text = R"({
    "name": "nightly-etl", "maxParallel": 4, "graceMs": 2000, "timeoutMs": 0,
    "onFailure": "stop",
    "nodes": [
      { "id": "extract", "argv": ["python3", "extract.py"], "cwd": "/srv/etl",
        "env": { "MODE": "full" }, "timeoutMs": 60000, "costPerSecondUsd": 0.0002 },
      { "id": "transform", "argv": ["./transform"], "needs": ["extract"], "retries": 1 }
    ]})";
  Result<ExecutionSpec> first = ParseExecutionSpec(text);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  Result<ExecutionSpec> second = ExecutionSpecFromJson(ExecutionSpecToJson(*first));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, *first);
}

TEST(SpecWriterTest, ACostIsWrittenAsTheClientWroteItAndReadBackBitIdentical) {
  // 17 significant digits: more than Boost.JSON's own parser reads exactly.
  const std::string text = R"({"nodes": [)"
                           R"({"id": "a", "argv": ["x"], "costPerSecondUsd": 0.012005},)"
                           R"({"id": "b", "argv": ["x"], "costPerSecondUsd": 0.10198063705999999},)"
                           R"({"id": "c", "argv": ["x"], "costPerSecondUsd": 1E-2}]})";
  Result<ExecutionSpec> parsed = ParseExecutionSpec(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->nodes[1].cost_per_second_usd, 0.10198063705999999);
  std::string written = SerializeJson(ExecutionSpecToJson(*parsed));
  EXPECT_NE(written.find(R"("costPerSecondUsd":0.012005})"), std::string::npos) << written;
  EXPECT_NE(written.find(R"("costPerSecondUsd":0.10198063705999999})"), std::string::npos)
      << written;
  EXPECT_NE(written.find(R"("costPerSecondUsd":0.01})"), std::string::npos) << written;
  Result<ExecutionSpec> reloaded = ParseExecutionSpec(written);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status().ToString();
  EXPECT_EQ(*reloaded, *parsed);
}

}  // namespace
}  // namespace warden::dag
