#include "dag/spec.h"

#include <gtest/gtest.h>

#include "test_specs.h"

namespace warden::dag {
namespace {

TEST(SpecTest, GraceInForceFollowsStopThenNodeThenExecutionThenDaemon) {
  NodeSpec node;
  ExecutionSpec execution;
  EXPECT_EQ(GraceMsInForce(std::nullopt, node, execution), kDefaultGraceMs);
  EXPECT_EQ(GraceMsInForce(std::nullopt, node, execution, 7000), 7000u);
  execution.grace_ms = 3000;
  EXPECT_EQ(GraceMsInForce(std::nullopt, node, execution, 7000), 3000u);
  node.grace_ms = 100;
  EXPECT_EQ(GraceMsInForce(std::nullopt, node, execution, 7000), 100u);
  EXPECT_EQ(GraceMsInForce(0, node, execution, 7000), 0u);
}

TEST(SpecTest, NodeIdsFollowThePatternOfApiDoc) {
  EXPECT_TRUE(IsValidNodeId("a"));
  EXPECT_TRUE(IsValidNodeId("Extract_2.v-1"));
  EXPECT_TRUE(IsValidNodeId("9"));
  EXPECT_FALSE(IsValidNodeId(""));
  EXPECT_FALSE(IsValidNodeId(".hidden"));
  EXPECT_FALSE(IsValidNodeId("_a"));
  EXPECT_FALSE(IsValidNodeId("a b"));
  EXPECT_FALSE(IsValidNodeId("a/b"));
  EXPECT_FALSE(IsValidNodeId("caf\xc3\xa9"));
  EXPECT_TRUE(IsValidNodeId(std::string(128, 'x')));
  EXPECT_FALSE(IsValidNodeId(std::string(129, 'x')));
}

TEST(SpecTest, HandWrittenSpecWithBothUserNameAndUidIsRejected) {
  ExecutionSpec spec = testing::Spec({testing::Node("a")});
  spec.nodes[0].user = UserSpec{.uid = 5, .name = "bob"};
  EXPECT_EQ(ValidateSpecValues(spec, SpecLimits{}).message(),
            "nodes[0].user: set a name or a uid, not both");
}

}  // namespace
}  // namespace warden::dag
