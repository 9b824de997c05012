#include "dag/dag.h"

#include <gtest/gtest.h>

#include "test_specs.h"

namespace warden::dag {
namespace {

using testing::LayeredSpec;
using testing::MustBuild;
using testing::Node;
using testing::Spec;

std::vector<NodeIndex> ToVector(std::span<const NodeIndex> span) {
  return {span.begin(), span.end()};
}

TEST(DagTest, DiamondHasNeedsAndDependentsBothWays) {
  Dag dag = MustBuild(Spec({Node("a"), Node("b", {"a"}), Node("c", {"a"}), Node("d", {"c", "b"})}));
  EXPECT_EQ(dag.node_count(), 4u);
  EXPECT_EQ(dag.edge_count(), 4u);
  EXPECT_EQ(ToVector(dag.needs(3)), (std::vector<NodeIndex>{2, 1}));       // as listed
  EXPECT_EQ(ToVector(dag.dependents(0)), (std::vector<NodeIndex>{1, 2}));  // spec order
  EXPECT_TRUE(dag.dependents(3).empty());
  EXPECT_TRUE(dag.needs(0).empty());
}

TEST(DagTest, FindReturnsIndexByIdOrNothing) {
  Dag dag = MustBuild(Spec({Node("x"), Node("y", {"x"})}));
  EXPECT_EQ(dag.Find("y"), 1u);
  EXPECT_EQ(dag.Find("z"), std::nullopt);
}

TEST(DagTest, NodesMayNeedNodesListedAfterThem) {
  Dag dag = MustBuild(Spec({Node("late", {"early"}), Node("early")}));
  EXPECT_EQ(ToVector(dag.dependents(1)), std::vector<NodeIndex>{0});
}

TEST(DagTest, BuildValidatesHandWrittenSpecsToo) {
  ExecutionSpec spec = Spec({Node("a")});
  spec.nodes[0].cwd = "relative";
  Result<Dag> dag = Dag::Build(spec);
  ASSERT_FALSE(dag.ok());
  EXPECT_EQ(dag.status().message(), "nodes[0].cwd: must be an absolute path");
}

TEST(DagTest, TwoNodeCycleIsNamed) {
  Result<Dag> dag = Dag::Build(Spec({Node("a", {"b"}), Node("b", {"a"})}));
  ASSERT_FALSE(dag.ok());
  EXPECT_EQ(dag.status().message(), "cycle: a -> b -> a");
}

TEST(DagTest, LongChainBuildsWithoutDeepRecursion) {
  std::vector<NodeSpec> nodes = {Node("n0")};
  for (int i = 1; i < 10'000; ++i) {
    nodes.push_back(Node("n" + std::to_string(i), {"n" + std::to_string(i - 1)}));
  }
  Dag dag = MustBuild(Spec(std::move(nodes)));
  EXPECT_EQ(dag.edge_count(), 9'999u);
}

TEST(DagTest, LayeredDagOfTenByHundredHasNinetyThousandEdges) {
  Dag dag = MustBuild(LayeredSpec(10, 100, 8));
  EXPECT_EQ(dag.node_count(), 1000u);
  EXPECT_EQ(dag.edge_count(), 90'000u);
  EXPECT_EQ(dag.dependents(0).size(), 100u);
  EXPECT_TRUE(dag.dependents(999).empty());
}

}  // namespace
}  // namespace warden::dag
