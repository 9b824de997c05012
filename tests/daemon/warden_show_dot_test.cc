// End to end: `warden show ID --dot` prints the execution's DAG as Graphviz DOT, coloured as
// the web view colours it, and Graphviz accepts it.
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon_fixture.h"

namespace warden::testing {
namespace {

class WardenShowDotTest : public DaemonFixture {
 protected:
  void SetUp() override {
    DaemonFixture::SetUp();
    ASSERT_GT(StartDaemon({"--containment", "pgroup", "--grace-ms", "1000"}), 0);
  }
};

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(WardenShowDotTest, DotHasEveryNodeInItsStateColourAndAnEdgePerNeed) {
  const std::string spec = R"({"name":"dot \"quoted\"","onFailure":"continue","nodes":[
      {"id":"ok","argv":["true"]},
      {"id":"bad","argv":["sh","-c","exit 3"]},
      {"id":"after-bad","argv":["true"],"needs":["bad"]},
      {"id":"join","argv":["true"],"needs":["ok","after-bad"]}]})";
  CommandResult run = Warden({"run", WriteFile("spec.json", spec)});
  EXPECT_EQ(run.exit_code, 1) << run.out << run.err;  // a node failed
  CommandResult ps = Warden({"ps", "--all", "--json"});
  ASSERT_EQ(ps.exit_code, 0) << ps.err;
  const size_t at = ps.out.find("\"executionId\":\"");
  ASSERT_NE(at, std::string::npos) << ps.out;
  const std::string id = ps.out.substr(at + 15, ps.out.find('"', at + 15) - at - 15);

  CommandResult dot = Warden({"show", id, "--dot"});
  ASSERT_EQ(dot.exit_code, 0) << dot.err;
  const std::string& out = dot.out;
  EXPECT_TRUE(out.starts_with("digraph \"" + id + "\" {")) << out;
  EXPECT_TRUE(Contains(out, "rankdir=LR")) << out;
  EXPECT_TRUE(Contains(out, R"(label="dot \"quoted\" )" + id + " (failed)\"")) << out;
  // Node colours are the web view's (src/api/ui/app.css).
  EXPECT_TRUE(Contains(out, R"("ok" [label="ok\nsucceeded", fillcolor="#22c55e")")) << out;
  EXPECT_TRUE(Contains(out, R"("bad" [label="bad\nfailed exit 3", fillcolor="#ef4444")")) << out;
  EXPECT_TRUE(Contains(out, R"("after-bad" [label="after-bad\nskipped", fillcolor="#eceef1")"))
      << out;
  EXPECT_TRUE(Contains(out, R"("join" [label="join\nskipped")")) << out;
  for (const char* edge :
       {R"("bad" -> "after-bad";)", R"("ok" -> "join";)", R"("after-bad" -> "join";)"}) {
    EXPECT_TRUE(Contains(out, edge)) << edge << "\n" << out;
  }
  EXPECT_TRUE(out.ends_with("}\n")) << out;

  EXPECT_EQ(Warden({"show", id, "--dot", "--json"}).exit_code, 64);
  CommandResult help = Warden({"show", "--help"});
  EXPECT_TRUE(Contains(help.out, "--dot")) << help.out;

  // Graphviz reads it.
  if (std::system("command -v dot >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "graphviz (dot) is not installed: the DOT text was checked, not rendered";
  }
  const std::string input = WriteFile("graph.dot", out);
  const std::string svg = dir_ + "/graph.svg";
  const std::string command =
      "timeout 30 dot -Tsvg '" + input + "' -o '" + svg + "' 2>'" + dir_ + "/dot.err'";
  const int status = std::system(command.c_str());
  std::ifstream errors(dir_ + "/dot.err");
  std::stringstream why;
  why << errors.rdbuf();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << why.str();
  std::ifstream file(svg);
  std::stringstream rendered;
  rendered << file.rdbuf();
  EXPECT_TRUE(Contains(rendered.str(), "<svg")) << rendered.str();
  EXPECT_TRUE(Contains(rendered.str(), "#22c55e")) << "the fill colours survive";
}

}  // namespace
}  // namespace warden::testing
