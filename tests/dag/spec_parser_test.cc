#include "dag/spec_parser.h"

#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace warden::dag {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

SpecLimits TestLimits() {
  SpecLimits limits;
  limits.default_max_parallel = 3;
  return limits;
}

// Parses `text`, expects InvalidArgument, returns the message.
std::string Rejection(std::string_view text, const SpecLimits& limits = TestLimits()) {
  Result<ExecutionSpec> spec = ParseExecutionSpec(text, limits);
  EXPECT_FALSE(spec.ok()) << text;
  if (spec.ok()) return "";
  EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << spec.status().ToString();
  return spec.status().message();
}

// A valid spec with one extra member in node `b` (inserted as raw JSON text).
std::string WithNodeField(std::string_view member) {
  return R"({"nodes": [{"id": "a", "argv": ["true"]},
                       {"id": "b", "argv": ["true"], )" +
         std::string(member) + "}]}";
}

TEST(SpecParserTest, ExampleFromApiDocParsesWithEveryField) {
  Result<ExecutionSpec> spec = ParseExecutionSpec(R"({
    "name": "nightly-etl", "requestId": "req-1", "maxParallel": 4, "graceMs": 1500,
    "timeoutMs": 90000, "onFailure": "continue",
    "nodes": [
      { "id": "extract", "argv": ["python3", "extract.py"], "cwd": "/srv/etl",
        "env": { "MODE": "full" }, "timeoutMs": 60000, "costPerSecondUsd": 0.0002,
        "graceMs": 500, "user": "etl" },
      { "id": "transform", "argv": ["./transform"], "needs": ["extract"], "retries": 1,
        "user": 1001 }
    ]})",
                                                  TestLimits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->name, "nightly-etl");
  EXPECT_EQ(spec->request_id, "req-1");
  EXPECT_EQ(spec->max_parallel, 4u);
  EXPECT_EQ(spec->grace_ms, 1500u);
  EXPECT_EQ(spec->timeout_ms, 90000u);
  EXPECT_EQ(spec->on_failure, OnFailure::kContinue);
  ASSERT_EQ(spec->nodes.size(), 2u);
  const NodeSpec& extract = spec->nodes[0];
  EXPECT_EQ(extract.id, "extract");
  EXPECT_EQ(extract.argv, (std::vector<std::string>{"python3", "extract.py"}));
  EXPECT_EQ(extract.cwd, "/srv/etl");
  EXPECT_EQ(extract.env.at("MODE"), "full");
  EXPECT_EQ(extract.timeout_ms, 60000u);
  EXPECT_DOUBLE_EQ(extract.cost_per_second_usd, 0.0002);
  EXPECT_EQ(extract.grace_ms, 500u);
  EXPECT_EQ(extract.user, UserSpec::ByName("etl"));
  const NodeSpec& transform = spec->nodes[1];
  EXPECT_EQ(transform.needs, std::vector<std::string>{"extract"});
  EXPECT_EQ(transform.retries, 1u);
  EXPECT_EQ(transform.user, UserSpec::ByUid(1001));
}

TEST(SpecParserTest, OmittedFieldsTakeTheirDefaults) {
  Result<ExecutionSpec> spec =
      ParseExecutionSpec(R"({"nodes": [{"id": "a", "argv": ["true"]}]})", TestLimits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_FALSE(spec->name);
  EXPECT_FALSE(spec->request_id);
  EXPECT_EQ(spec->max_parallel, 3u);  // limits.default_max_parallel
  EXPECT_FALSE(spec->grace_ms);       // the daemon's grace applies
  EXPECT_EQ(spec->timeout_ms, 0u);
  EXPECT_EQ(spec->on_failure, OnFailure::kStop);
  const NodeSpec& a = spec->nodes[0];
  EXPECT_TRUE(a.needs.empty());
  EXPECT_EQ(a.cwd, "/");
  EXPECT_TRUE(a.env.empty());
  EXPECT_EQ(a.timeout_ms, 0u);
  EXPECT_EQ(a.retries, 0u);
  EXPECT_EQ(a.cost_per_second_usd, 0.0);
  EXPECT_FALSE(a.grace_ms);
  EXPECT_FALSE(a.user);
}

TEST(SpecParserTest, MaxParallelDefaultsToCpuCountWithoutConfiguredDefault) {
  Result<ExecutionSpec> spec = ParseExecutionSpec(R"({"nodes": [{"id": "a", "argv": ["x"]}]})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->max_parallel, std::max(1u, std::thread::hardware_concurrency()));
}

TEST(SpecParserTest, NullMeansOmittedForOptionalFields) {
  Result<ExecutionSpec> spec = ParseExecutionSpec(
      R"({"name": null, "graceMs": null,
          "nodes": [{"id": "a", "argv": ["x"], "user": null, "needs": null}]})",
      TestLimits());
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_FALSE(spec->name);
  EXPECT_FALSE(spec->grace_ms);
  EXPECT_FALSE(spec->nodes[0].user);
}

TEST(SpecParserTest, IntegralDoublesAreAcceptedAsIntegers) {
  Result<ExecutionSpec> spec =
      ParseExecutionSpec(R"({"timeoutMs": 1e3, "nodes": [{"id": "a", "argv": ["x"]}]})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->timeout_ms, 1000u);
}

TEST(SpecParserTest, UserGivenAsDigitStringIsAUid) {
  Result<ExecutionSpec> spec =
      ParseExecutionSpec(R"({"nodes": [{"id": "a", "argv": ["x"], "user": "0"}]})");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->nodes[0].user, UserSpec::ByUid(0));
}

TEST(SpecParserTest, InvalidJsonSaysWhere) {
  std::string message = Rejection("{\"nodes\": [\n  {\"id\": \"a\",, }]}");
  EXPECT_THAT(message, HasSubstr("invalid JSON at line 2, column 14"));
}

TEST(SpecParserTest, TruncatedJsonIsInvalid) {
  EXPECT_THAT(Rejection(R"({"nodes": [)"), HasSubstr("invalid JSON at line 1"));
}

TEST(SpecParserTest, TextAfterTheDocumentIsInvalid) {
  EXPECT_THAT(Rejection(R"({"nodes": [{"id": "a", "argv": ["x"]}]} {})"),
              HasSubstr("invalid JSON at line 1, column 41: extra data"));
}

TEST(SpecParserTest, AStringThatIsNotUtf8IsRejectedNamingItsField) {
  EXPECT_EQ(Rejection("{\"nodes\": [{\"id\": \"a\", \"argv\": [\"echo\", \"x\xff\"]}]}"),
            "invalid JSON at line 1, column 43: nodes[0].argv[1]: invalid UTF-8");
  // An overlong form, a surrogate and a cut sequence are not UTF-8 either.
  EXPECT_THAT(Rejection("{\"name\": \"\xc0\xaf\", \"nodes\": []}"),
              HasSubstr("column 11: name: invalid UTF-8"));
  EXPECT_THAT(Rejection("{\"nodes\": [{\"id\": \"a\", \"argv\": [\"x\"], \"env\": {\"K\": "
                        "\"\xed\xa0\x80\"}}]}"),
              HasSubstr("nodes[0].env.K: invalid UTF-8"));
  EXPECT_THAT(Rejection("{\"nodes\": [{\"id\": \"a\"}, {\"id\": \"\xe2\x82\"}]}"),
              HasSubstr("nodes[1].id: invalid UTF-8"));
  // Well-formed UTF-8 is a string like any other.
  EXPECT_THAT(Rejection("{\"name\": \"caf\xc3\xa9 \xf0\x9f\x98\x80\", \"nodes\": []}"),
              Not(HasSubstr("UTF-8")));
}

TEST(SpecParserTest, RepeatedKeyInANodeIsRejectedWithItsPosition) {
  EXPECT_EQ(Rejection("{\"nodes\": [{\"id\": \"a\", \"argv\": [\"x\"],\n"
                      "  \"needs\": [], \"needs\": []}]}"),
            "invalid JSON at line 2, column 22: duplicate key \"needs\"");
}

TEST(SpecParserTest, RepeatedTopLevelKeyIsRejected) {
  EXPECT_THAT(Rejection(R"({"name": "a", "name": "b", "nodes": [{"id": "a", "argv": ["x"]}]})"),
              HasSubstr("duplicate key \"name\""));
}

TEST(SpecParserTest, SpecOverTheSizeLimitIsTooLarge) {
  SpecLimits limits;
  limits.max_spec_bytes = 64;
  std::string text =
      R"({"nodes": [{"id": "a", "argv": ["x"]}], "name": ")" + std::string(100, 'n') + "\"}";
  Result<ExecutionSpec> spec = ParseExecutionSpec(text, limits);
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), StatusCode::kTooLarge);
  EXPECT_THAT(spec.status().message(), HasSubstr("over the limit of 64"));
}

TEST(SpecParserTest, MoreNodesThanTheLimitAreRejected) {
  SpecLimits limits = TestLimits();
  limits.max_nodes = 1;
  EXPECT_EQ(
      Rejection(R"({"nodes": [{"id": "a", "argv": ["x"]}, {"id": "b", "argv": ["x"]}]})", limits),
      "nodes: 2 nodes, over the limit of 1");
}

TEST(SpecParserTest, TenThousandNodesAreAcceptedByDefaultAndOneMoreIsNot) {
  std::string text = R"({"nodes": [)";
  for (int i = 0; i < 10'000; ++i) {
    text += R"({"id": "n)" + std::to_string(i) + R"(", "argv": ["x"]},)";
  }
  Result<ExecutionSpec> at_limit = ParseExecutionSpec(text.substr(0, text.size() - 1) + "]}");
  ASSERT_TRUE(at_limit.ok()) << at_limit.status().ToString();
  EXPECT_EQ(at_limit->nodes.size(), 10'000u);
  text += R"({"id": "one_more", "argv": ["x"]}]})";
  EXPECT_EQ(Rejection(text, SpecLimits{}), "nodes: 10001 nodes, over the limit of 10000");
}

TEST(SpecParserTest, LayeredTenByHundredSpecParsesFromText) {
  // 90,000 needs in well under the 4 MiB limit.
  std::string text = R"({"maxParallel": 16, "nodes": [)";
  for (int layer = 0; layer < 10; ++layer) {
    for (int k = 0; k < 100; ++k) {
      if (layer + k > 0) text += ",";
      text += R"({"id": "L)" + std::to_string(layer) + "_" + std::to_string(k) +
              R"(", "argv": ["/bin/true"], "needs": [)";
      for (int p = 0; layer > 0 && p < 100; ++p) {
        text +=
            (p > 0 ? ",\"L" : "\"L") + std::to_string(layer - 1) + "_" + std::to_string(p) + "\"";
      }
      text += "]}";
    }
  }
  text += "]}";
  Result<ExecutionSpec> spec = ParseExecutionSpec(text);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->nodes.size(), 1000u);
  EXPECT_EQ(spec->nodes[999].needs.size(), 100u);
}

TEST(SpecParserTest, ReloadWithUnlimitedLimitsAcceptsASpecOverTodaysLimits) {
  SpecLimits tight = TestLimits();
  tight.max_nodes = 1;
  boost::json::value journaled = boost::json::parse(
      R"({"maxParallel": 2, "nodes": [{"id": "a", "argv": ["x"]}, {"id": "b", "argv": ["x"]}]})");
  EXPECT_FALSE(ExecutionSpecFromJson(journaled, tight).ok());
  EXPECT_TRUE(ExecutionSpecFromJson(journaled, SpecLimits::Unlimited()).ok());
}

TEST(SpecParserTest, TopLevelMustBeAnObject) {
  EXPECT_EQ(Rejection("[1]"), "spec: must be a JSON object, got an array");
}

TEST(SpecParserTest, UnknownExecutionFieldIsNamed) {
  EXPECT_EQ(Rejection(R"({"maxParalel": 2, "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "maxParalel: unknown field");
}

TEST(SpecParserTest, UnknownNodeFieldIsNamedWithItsNode) {
  EXPECT_EQ(Rejection(WithNodeField(R"("colour": "red")")), "nodes[1].colour: unknown field");
}

TEST(SpecParserTest, MissingNodesIsRejected) {
  EXPECT_EQ(Rejection(R"({"name": "x"})"), "nodes: required");
}

TEST(SpecParserTest, EmptyNodesIsRejected) {
  EXPECT_EQ(Rejection(R"({"nodes": []})"), "nodes: must not be empty");
}

TEST(SpecParserTest, WrongTypeOfExecutionFieldIsNamed) {
  EXPECT_EQ(Rejection(R"({"name": 5, "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "name: must be a string, got 5");
}

TEST(SpecParserTest, WrongTypeOfNodeFieldIsNamed) {
  EXPECT_EQ(Rejection(WithNodeField(R"("cwd": ["/tmp"])")),
            "nodes[1].cwd: must be a string, got an array");
}

TEST(SpecParserTest, NodeThatIsNotAnObjectIsNamed) {
  EXPECT_EQ(Rejection(R"({"nodes": ["a"]})"), "nodes[0]: must be an object, got a string");
}

TEST(SpecParserTest, NonStringEnvValueIsNamed) {
  EXPECT_EQ(Rejection(WithNodeField(R"("env": {"MODE": 1})")),
            "nodes[1].env.MODE: must be a string, got 1");
}

TEST(SpecParserTest, EnvNameWithEqualsSignIsRejected) {
  EXPECT_THAT(Rejection(WithNodeField(R"("env": {"A=B": "c"})")),
              HasSubstr("nodes[1].env: variable name \"A=B\""));
}

TEST(SpecParserTest, NegativeNumberIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("retries": -1)")),
            "nodes[1].retries: must be a non-negative integer, got -1");
}

TEST(SpecParserTest, FractionalNumberIsRejected) {
  EXPECT_EQ(Rejection(R"({"graceMs": 1.5, "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "graceMs: must be a non-negative integer, got 1.5");
}

TEST(SpecParserTest, NumberAsStringIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("timeoutMs": "10")")),
            "nodes[1].timeoutMs: must be a non-negative integer, got a string");
}

TEST(SpecParserTest, NumberOutOfRangeIsRejected) {
  EXPECT_EQ(Rejection(R"({"maxParallel": 4294967296, "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "maxParallel: must be at most 4294967295, got 4294967296");
}

TEST(SpecParserTest, ZeroMaxParallelIsRejected) {
  EXPECT_EQ(Rejection(R"({"maxParallel": 0, "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "maxParallel: must be at least 1");
}

TEST(SpecParserTest, NegativeCostIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("costPerSecondUsd": -0.5)")),
            "nodes[1].costPerSecondUsd: must be a number >= 0, got -0.5");
}

TEST(SpecParserTest, MissingIdIsRejected) {
  EXPECT_EQ(Rejection(R"({"nodes": [{"argv": ["x"]}]})"), "nodes[0].id: required");
}

TEST(SpecParserTest, IdWithForbiddenCharacterIsRejected) {
  EXPECT_EQ(Rejection(R"({"nodes": [{"id": "a/b", "argv": ["x"]}]})"),
            "nodes[0].id: must match [A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
}

TEST(SpecParserTest, IdStartingWithPunctuationIsRejected) {
  EXPECT_THAT(Rejection(R"({"nodes": [{"id": "-a", "argv": ["x"]}]})"),
              HasSubstr("nodes[0].id: must match"));
}

TEST(SpecParserTest, IdLongerThan128IsRejected) {
  std::string ok_id(128, 'a');
  EXPECT_TRUE(IsValidNodeId(ok_id));
  EXPECT_FALSE(IsValidNodeId(ok_id + "a"));
  EXPECT_THAT(Rejection(R"({"nodes": [{"id": ")" + ok_id + R"(a", "argv": ["x"]}]})"),
              HasSubstr("nodes[0].id: must match"));
}

TEST(SpecParserTest, DuplicateIdNamesTheNodeAndBothPlaces) {
  EXPECT_EQ(Rejection(R"({"nodes": [{"id": "a", "argv": ["x"]}, {"id": "b", "argv": ["x"]},
                                    {"id": "a", "argv": ["x"]}]})"),
            "node \"a\": duplicate id (nodes[0] and nodes[2])");
}

TEST(SpecParserTest, UnknownNeedIsNamed) {
  EXPECT_EQ(Rejection(WithNodeField(R"("needs": ["a", "zz"])")),
            "node \"b\": needs unknown node \"zz\"");
}

TEST(SpecParserTest, NodeNeedingItselfIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("needs": ["b"])")), "node \"b\": needs itself");
}

TEST(SpecParserTest, RepeatedNeedIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("needs": ["a", "a"])")),
            "node \"b\": needs \"a\" more than once");
}

TEST(SpecParserTest, NonStringNeedIsNamed) {
  EXPECT_EQ(Rejection(WithNodeField(R"("needs": [1])")),
            "nodes[1].needs[0]: must be a string, got 1");
}

TEST(SpecParserTest, EmptyArgvIsRejected) {
  EXPECT_EQ(Rejection(R"({"nodes": [{"id": "a", "argv": ["x"]}, {"id": "b", "argv": []}]})"),
            "nodes[1].argv: must be a non-empty array of strings");
}

TEST(SpecParserTest, MissingArgvIsRejected) {
  EXPECT_EQ(Rejection(R"({"nodes": [{"id": "a"}]})"),
            "nodes[0].argv: must be a non-empty array of strings");
}

TEST(SpecParserTest, NonStringArgvElementIsNamed) {
  EXPECT_EQ(Rejection(R"({"nodes": [{"id": "a", "argv": ["echo", 3]}]})"),
            "nodes[0].argv[1]: must be a string, got 3");
}

TEST(SpecParserTest, EmptyProgramNameIsRejected) {
  EXPECT_THAT(Rejection(R"({"nodes": [{"id": "a", "argv": [""]}]})"),
              HasSubstr("nodes[0].argv: must be a non-empty array of strings"));
}

TEST(SpecParserTest, RelativeCwdIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("cwd": "srv/etl")")),
            "nodes[1].cwd: must be an absolute path");
}

TEST(SpecParserTest, OnRecoveryIsFailByDefaultAndTakesResume) {
  auto plain = ParseExecutionSpec(R"({"nodes": [{"id": "a", "argv": ["x"]}]})", TestLimits());
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->on_recovery, OnRecovery::kFail);
  auto resume = ParseExecutionSpec(
      R"({"onRecovery": "resume", "nodes": [{"id": "a", "argv": ["x"]}]})", TestLimits());
  ASSERT_TRUE(resume.ok()) << resume.status().ToString();
  EXPECT_EQ(resume->on_recovery, OnRecovery::kResume);
  EXPECT_EQ(Rejection(R"({"onRecovery": "retry", "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "onRecovery: must be \"fail\" or \"resume\"");
}

TEST(SpecParserTest, BadOnFailureIsRejected) {
  EXPECT_EQ(Rejection(R"({"onFailure": "retry", "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "onFailure: must be \"stop\" or \"continue\"");
}

TEST(SpecParserTest, EmptyRequestIdIsRejected) {
  EXPECT_EQ(Rejection(R"({"requestId": "", "nodes": [{"id": "a", "argv": ["x"]}]})"),
            "requestId: must not be empty");
}

TEST(SpecParserTest, BadUserIsRejected) {
  EXPECT_EQ(Rejection(WithNodeField(R"("user": true)")),
            "nodes[1].user: must be a user name or a uid, got true");
  EXPECT_EQ(Rejection(WithNodeField(R"("user": "")")), "nodes[1].user: must not be empty");
  EXPECT_EQ(Rejection(WithNodeField(R"("user": "4294967295")")),
            "nodes[1].user: uid must be below 4294967295");
  EXPECT_EQ(Rejection(WithNodeField(R"("user": -3)")),
            "nodes[1].user: must be a non-negative integer, got -3");
}

TEST(SpecParserTest, CycleIsNamedInNeedsOrder) {
  EXPECT_EQ(Rejection(R"({"nodes": [
      {"id": "a", "argv": ["x"], "needs": ["b"]},
      {"id": "b", "argv": ["x"], "needs": ["c"]},
      {"id": "c", "argv": ["x"], "needs": ["a"]},
      {"id": "d", "argv": ["x"]}]})"),
            "cycle: a -> b -> c -> a");
}

TEST(SpecParserTest, CycleBehindAnAcyclicPrefixNamesOnlyTheCycle) {
  EXPECT_EQ(Rejection(R"({"nodes": [
      {"id": "start", "argv": ["x"], "needs": ["p"]},
      {"id": "p", "argv": ["x"], "needs": ["q"]},
      {"id": "q", "argv": ["x"], "needs": ["p"]}]})"),
            "cycle: p -> q -> p");
}

TEST(SpecParserTest, LongCycleIsShortenedInTheMiddle) {
  std::string text = R"({"nodes": [)";
  for (int i = 0; i < 40; ++i) {
    if (i > 0) text += ",";
    text += R"({"id": "n)" + std::to_string(i) + R"(", "argv": ["x"], "needs": ["n)" +
            std::to_string((i + 1) % 40) + R"("]})";
  }
  text += "]}";
  EXPECT_EQ(Rejection(text),
            "cycle: n0 -> n1 -> n2 -> n3 -> n4 -> n5 -> n6 -> n7 -> ... (24 more) -> n32 -> n33 "
            "-> n34 -> n35 -> n36 -> n37 -> n38 -> n39 -> n0");
}

}  // namespace
}  // namespace warden::dag
