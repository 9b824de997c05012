// End to end: a cost is one double everywhere a user reads it — the API's answers, the
// events endpoint (listed and followed), the journal as the stock sqlite3 shell shows it, the
// CLI's --json, and the API again after a restart — and it is spelled as a plain decimal
// (0.012005, not 1.2005E-2).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <boost/json.hpp>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/json_text.h"
#include "daemon_fixture.h"

extern char** environ;

namespace warden::testing {
namespace {

namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr double kRate = 0.012005;           // costPerSecondUsd in the spec
constexpr double kReported = 0.10198063706;  // what a node reports on its notify descriptor

// Parses exactly (ParseJson), failing the test on anything that is not JSON.
json::value Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value v = ParseJson(text, ec);
  EXPECT_FALSE(ec) << "not JSON: " << text;
  return v;
}

uint64_t Bits(double d) { return std::bit_cast<uint64_t>(d); }
uint64_t Bits(const json::value& v) { return v.is_number() ? Bits(v.to_number<double>()) : 0; }

// The number tokens of JSON `text` as written (string literals skipped).
std::vector<std::string> NumberTokens(std::string_view text) {
  std::vector<std::string> tokens;
  for (size_t i = 0; i < text.size();) {
    if (text[i] == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      ++i;
    } else if (text[i] == '-' || (text[i] >= '0' && text[i] <= '9')) {
      size_t start = i;
      while (i < text.size() &&
             std::string_view("+-.0123456789eE").find(text[i]) != std::string_view::npos) {
        ++i;
      }
      tokens.emplace_back(text.substr(start, i - start));
    } else {
      ++i;
    }
  }
  return tokens;
}

// Fails the test for every number of `text` written with an exponent.
void ExpectPlainNumbers(std::string_view text, std::string_view where) {
  for (const std::string& token : NumberTokens(text)) {
    EXPECT_EQ(token.find_first_of("eE"), std::string::npos) << where << ": " << token;
  }
}

std::string Str(const json::value& v, std::string_view key) {
  const json::value* f = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return f && f->is_string() ? std::string(f->as_string()) : "";
}

const json::value& Node(const json::value& execution, std::string_view id) {
  for (const json::value& node : execution.at("nodes").as_array()) {
    if (Str(node, "id") == id) return node;
  }
  ADD_FAILURE() << "no node " << id;
  static const json::value none;
  return none;
}

// The event of `kind` (and `node`, when given) in an events list.
const json::value& Event(const json::array& events, std::string_view kind,
                         std::string_view node = {}) {
  for (const json::value& event : events) {
    if (Str(event, "kind") == kind && (node.empty() || Str(event, "node_id") == node)) {
      return event;
    }
  }
  ADD_FAILURE() << "no " << kind << " event " << node;
  static const json::value none;
  return none;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class JsonNumbersTest : public DaemonFixture {
 protected:
  void SetUp() override {
    DaemonFixture::SetUp();
    daemon_ = StartDaemon({"--containment", "pgroup"});
    ASSERT_GT(daemon_, 0) << "wardend did not get ready";
  }

  std::string Create(const std::string& spec) {
    HttpResult r = Http("POST", "/api/executions", spec, "application/json");
    EXPECT_EQ(r.status, 201) << r.body;
    return Str(Parse(r.body), "executionId");
  }

  // GET /api/executions/ID: the body as sent.
  std::string Get(const std::string& id) {
    HttpResult r = Http("GET", "/api/executions/" + id);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }

  bool Ended(const std::string& id) {
    std::string status = Str(Parse(Get(id)), "status");
    return status == "completed" || status == "failed" || status == "stopped";
  }

  // Runs `sql` with the stock sqlite3 shell (its -json mode writes 20 significant digits, so
  // a REAL reads back as the same double); its rows.
  json::array Sqlite(const std::string& sql) {
    const std::string out = dir_ + "/sqlite.out";
    std::vector<std::string> args = {
        "sqlite3", "-json", "-cmd", ".timeout 10000", data_ + "/warden.db", sql};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << "cannot run sqlite3";
    if (rc != 0) return {};
    int status = -1;
    auto deadline = steady_clock::now() + std::chrono::seconds(20);
    while (waitpid(pid, &status, WNOHANG) == 0) {
      if (steady_clock::now() > deadline) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        break;
      }
      std::this_thread::sleep_for(milliseconds(5));
    }
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << sql;
    std::string text = ReadText(out);
    if (text.find_first_not_of(" \n") == std::string::npos) return {};
    json::value rows = Parse(text);
    return rows.is_array() ? rows.as_array() : json::array{};
  }

  // The execution's journal rows: kind, node_id, the payload text as stored, and `cost`, the
  // payload's costUsd (or finalCostUsd) through json_extract.
  json::array JournalRows(const std::string& id) {
    return Sqlite(
        "SELECT seq, kind, node_id, payload, "
        "coalesce(json_extract(payload, '$.costUsd'), json_extract(payload, '$.finalCostUsd')) "
        "AS cost FROM journal WHERE execution_id = '" +
        id + "' ORDER BY seq");
  }

  // Checks that the events endpoint, listed and followed, gives the journal's payloads back
  // as the journal holds them, and that json_extract reads the same cost. Returns the list.
  json::array ExpectEventsAsJournaled(const std::string& id) {
    HttpResult listed = Http("GET", "/api/executions/" + id + "/events");
    EXPECT_EQ(listed.status, 200) << listed.body;
    ExpectPlainNumbers(listed.body, "events");
    json::array events = Parse(listed.body).at("events").as_array();

    HttpResult followed = Http("GET", "/api/executions/" + id + "/events?follow=true");
    EXPECT_EQ(followed.status, 200) << followed.body;
    std::string expected_lines;
    for (const json::value& event : events) expected_lines += SerializeJson(event) + "\n";
    EXPECT_EQ(followed.body, expected_lines) << "the stream writes rows as the list does";

    json::array rows = JournalRows(id);
    EXPECT_EQ(rows.size(), events.size());
    for (size_t i = 0; i < std::min(rows.size(), events.size()); ++i) {
      const json::value& row = rows[i];
      const json::value& event = events[i];
      const std::string stored = Str(row, "payload");
      ExpectPlainNumbers(stored, Str(row, "kind"));
      EXPECT_EQ(SerializeJson(event.at("payload")), stored)
          << "seq " << row.at("seq") << ": the payload as the journal holds it";
      const json::value& cost = row.at("cost");
      if (!cost.is_null()) {
        const json::object& payload = event.at("payload").as_object();
        const json::value* field = payload.if_contains("costUsd");
        if (field == nullptr) field = payload.if_contains("finalCostUsd");
        EXPECT_NE(field, nullptr) << stored;
        if (field == nullptr) continue;
        EXPECT_EQ(Bits(cost), Bits(*field)) << Str(row, "kind") << ": json_extract " << cost;
      }
    }
    return events;
  }

  pid_t daemon_ = -1;
};

TEST_F(JsonNumbersTest, CostsOfACompletedRunAreOneDoubleOnEveryPathAndSpelledPlainly) {
  const std::string id = Create(R"({"name":"numbers","nodes":[
      {"id":"rate","argv":["/bin/sleep","0.3"],"costPerSecondUsd":0.012005},
      {"id":"notify","argv":["/bin/sh","-c","echo cost_usd=0.10198063706 >&$WARDEN_NOTIFY_FD"]}]})");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(Eventually([&] { return Ended(id); })) << Get(id);

  // The answer.
  const std::string body = Get(id);
  ExpectPlainNumbers(body, "GET execution");
  const json::value execution = Parse(body);
  EXPECT_EQ(Str(execution, "status"), "completed") << body;
  const size_t spelled = body.find(R"("costUsd":0.10198063706)");
  ASSERT_NE(spelled, std::string::npos) << body;
  EXPECT_FALSE(std::isdigit(static_cast<unsigned char>(body[spelled + 23]))) << body;
  EXPECT_EQ(Bits(Node(execution, "notify").at("costUsd")), Bits(kReported));
  const double rate_cost = Node(execution, "rate").at("costUsd").to_number<double>();
  EXPECT_GT(rate_cost, 0.25 * kRate);
  const double total = execution.at("costUsd").to_number<double>();
  EXPECT_EQ(Bits(total), Bits(rate_cost + kReported));

  // The events endpoint and the journal.
  json::array events = ExpectEventsAsJournaled(id);
  const json::value& spec = Event(events, "execution.created").at("payload").at("spec");
  EXPECT_EQ(Bits(spec.at("nodes").at(0).at("costPerSecondUsd")), Bits(kRate));
  EXPECT_NE(SerializeJson(spec).find(R"("costPerSecondUsd":0.012005)"), std::string::npos);
  EXPECT_EQ(Bits(Event(events, "cost.reported", "notify").at("payload").at("costUsd")),
            Bits(kReported));
  EXPECT_EQ(Bits(Event(events, "node.exited", "notify").at("payload").at("costUsd")),
            Bits(kReported));
  EXPECT_EQ(Bits(Event(events, "node.exited", "rate").at("payload").at("costUsd")),
            Bits(rate_cost));
  EXPECT_EQ(Bits(Event(events, "execution.completed").at("payload").at("costUsd")), Bits(total));

  // The views and the journaled spec, as json_extract reads them.
  json::array views = Sqlite(
      "SELECT e.cost_usd, json_extract(j.payload, '$.spec.nodes[0].costPerSecondUsd') AS rate "
      "FROM executions e JOIN journal j ON j.execution_id = e.id "
      "AND j.kind = 'execution.created' WHERE e.id = '" +
      id + "'");
  ASSERT_EQ(views.size(), 1u);
  EXPECT_EQ(Bits(views[0].at("cost_usd")), Bits(total));
  EXPECT_EQ(Bits(views[0].at("rate")), Bits(kRate));

  // The CLI.
  CommandResult shown = Warden({"show", id, "--json"});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  ExpectPlainNumbers(shown.out, "warden show --json");
  EXPECT_EQ(Bits(Parse(shown.out).at("costUsd")), Bits(total));
  EXPECT_EQ(Bits(Node(Parse(shown.out), "notify").at("costUsd")), Bits(kReported));
  CommandResult listed = Warden({"events", id, "--json"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  std::string expected_lines;
  for (const json::value& event : events) expected_lines += SerializeJson(event) + "\n";
  EXPECT_EQ(listed.out, expected_lines);

  // After a restart the execution is rebuilt from the journal: the same doubles.
  ASSERT_EQ(StopDaemon(daemon_), 0);
  daemon_ = StartDaemon({"--containment", "pgroup"});
  ASSERT_GT(daemon_, 0);
  const std::string again = Get(id);
  ExpectPlainNumbers(again, "GET execution after a restart");
  const json::value reloaded = Parse(again);
  EXPECT_EQ(Bits(reloaded.at("costUsd")), Bits(total)) << again;
  EXPECT_EQ(Bits(Node(reloaded, "notify").at("costUsd")), Bits(kReported));
  EXPECT_EQ(Bits(Node(reloaded, "rate").at("costUsd")), Bits(rate_cost));
}

TEST_F(JsonNumbersTest, TheStopAnswerHoldsTheCostTheJournalAndTheViewsHold) {
  const std::string id = Create(R"({"nodes":[
      {"id":"rate","argv":["/bin/sleep","30"],"costPerSecondUsd":0.012005},
      {"id":"notify","argv":["/bin/sh","-c",
        "echo cost_usd=0.10198063706 >&$WARDEN_NOTIFY_FD; exec /bin/sleep 30"]}]})");
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(Eventually([&] {
    return Parse(Get(id)).at("nodes").at(1).at("costUsd").to_number<double>() == kReported;
  })) << Get(id);

  HttpResult stop =
      Http("POST", "/api/executions/" + id + "/stop", R"({"graceMs":1000})", "application/json");
  ASSERT_EQ(stop.status, 200) << stop.body;
  ExpectPlainNumbers(stop.body, "stop answer");
  const json::value answer = Parse(stop.body);
  const double final_cost = answer.at("finalCostUsd").to_number<double>();
  EXPECT_GT(final_cost, kReported);

  json::array events = ExpectEventsAsJournaled(id);
  EXPECT_EQ(Bits(Event(events, "execution.stop_completed").at("payload").at("finalCostUsd")),
            Bits(final_cost));
  const double cost = Parse(Get(id)).at("costUsd").to_number<double>();
  EXPECT_EQ(Bits(Event(events, "execution.stopped").at("payload").at("costUsd")), Bits(cost));

  json::array stops = Sqlite("SELECT final_cost_usd FROM stops WHERE execution_id = '" + id + "'");
  ASSERT_EQ(stops.size(), 1u);
  EXPECT_EQ(Bits(stops[0].at("final_cost_usd")), Bits(final_cost));
  json::array executions = Sqlite("SELECT cost_usd FROM executions WHERE id = '" + id + "'");
  ASSERT_EQ(executions.size(), 1u);
  EXPECT_EQ(Bits(executions[0].at("cost_usd")), Bits(cost));
}

}  // namespace
}  // namespace warden::testing
