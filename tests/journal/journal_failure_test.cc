// A journal that cannot be written must say so, keep saying so, and leave the file intact.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>

#include "journal/journal.h"
#include "journal_test_util.h"

namespace warden::journal {
namespace {

Event Row(int i) {
  Event e;
  e.execution_id = "e" + std::to_string(i);
  e.kind = "execution.created";
  e.payload = "{\"pad\":\"" + std::string(1000, 'p') + "\"}";
  return e;
}

// Appends until an append fails; returns that failure (or ok if `max_rows` all succeeded).
Status FillUntilFailure(Journal& journal, int max_rows) {
  for (int i = 0; i < max_rows; ++i) {
    Event e = Row(i);
    auto r = journal.Append(e, Durability::kCrashSafe);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

TEST(JournalFailureTest, FullDatabaseFailsStickilyWithAClearErrorAndStaysIntact) {
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  JournalOptions options;
  options.max_page_count = 64;
  auto journal = Journal::Open(path, options);
  ASSERT_TRUE(journal.ok()) << journal.status().ToString();

  Status failure = FillUntilFailure(**journal, 10'000);
  ASSERT_FALSE(failure.ok()) << "64 pages cannot hold 10,000 rows";
  EXPECT_EQ(failure.code(), StatusCode::kUnavailable);
  EXPECT_NE(failure.message().find("full"), std::string::npos) << failure.message();
  EXPECT_NE(failure.message().find(path), std::string::npos) << failure.message();

  // Sticky: even a tiny event that would fit is refused with the same error.
  Event tiny;
  tiny.kind = "daemon.stopped";
  auto again = (*journal)->Append(tiny, Durability::kDurable);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().message(), failure.message());
  EXPECT_EQ((*journal)->health().message(), failure.message());
  // Reads still work, and what was committed before the failure is all there.
  auto all = (*journal)->ReadAll();
  ASSERT_TRUE(all.ok());
  EXPECT_GT(all->size(), 0u);
  EXPECT_EQ(IntegrityCheck(path), "ok");
}

// The exit code of a child that could not make its own mount namespace.
constexpr int kNoMountNamespace = 90;

// Runs `body` in a child process with its own mount namespace (so mounts vanish with it)
// and returns the child's exit code (kNoMountNamespace if it could not make one); the body
// reports failures on stderr.
int InMountNamespace(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr)) {
      std::perror("unshare/mount");
      _exit(kNoMountNamespace);
    }
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

TEST(JournalFailureTest, DeletedWalIsSeenAtTheNextCommitWhichSavesEveryCommitBeforeIt) {
  // Another program deletes the WAL while the journal runs (say, a cleanup of "*-wal").
  // Commits in it are lost at the next close or crash unless they are checkpointed first.
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  {
    auto journal = Journal::Open(path);
    ASSERT_TRUE(journal.ok()) << journal.status().ToString();
    for (int i = 0; i < 5; ++i) {
      Event e = Row(i);
      ASSERT_TRUE((*journal)->Append(e, Durability::kDurable).ok());
    }
    ASSERT_EQ(::unlink((path + "-wal").c_str()), 0);
    Event e = Row(5);
    ASSERT_TRUE((*journal)->Append(e, Durability::kDurable).ok())
        << "the commit that finds the WAL gone is itself saved";
    Status health = (*journal)->health();
    ASSERT_FALSE(health.ok()) << "a deleted WAL must fail the journal";
    EXPECT_NE(health.message().find("deleted"), std::string::npos) << health.message();
    EXPECT_NE(health.message().find("saved"), std::string::npos) << health.message();
    Event later = Row(6);
    EXPECT_FALSE((*journal)->Append(later, Durability::kDurable).ok()) << "sticky";
    // The journal is closed here as if the daemon had crashed: its WAL is gone either way.
  }
  auto reopened = Journal::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  auto all = (*reopened)->ReadAll();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u) << "every acknowledged commit is in the database file";
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("PRAGMA integrity_check").getString(), "ok");
}

TEST(JournalFailureTest, FullFilesystemFailsStickilyAndLeavesAnIntactDatabase) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tiny tmpfs needs root";
  ScratchDir dir;
  std::string mnt = dir.File("tiny");
  std::filesystem::create_directory(mnt);
  int code = InMountNamespace([&] {
    if (mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
      std::perror("mount tmpfs");
      return 91;
    }
    std::string path = mnt + "/warden.db";
    auto journal = Journal::Open(path);
    if (!journal.ok()) {
      std::fprintf(stderr, "open: %s\n", journal.status().ToString().c_str());
      return 2;
    }
    Status failure = FillUntilFailure(**journal, 100'000);
    if (failure.ok() || failure.code() != StatusCode::kUnavailable) {
      std::fprintf(stderr, "expected unavailable, got %s\n", failure.ToString().c_str());
      return 3;
    }
    if (failure.message().find("full") == std::string::npos) {
      std::fprintf(stderr, "message does not say full: %s\n", failure.message().c_str());
      return 4;
    }
    Event tiny;
    tiny.kind = "daemon.stopped";
    if ((*journal)->Append(tiny, Durability::kDurable).ok()) return 5;  // must stay failed
    auto rows = (*journal)->ReadAll();
    if (!rows.ok() || rows->empty()) return 6;
    journal->reset();
    std::string check = IntegrityCheck(path);
    if (check != "ok") {
      std::fprintf(stderr, "integrity_check: %s\n", check.c_str());
      return 7;
    }
    return 0;
  });
  if (code == kNoMountNamespace) {
    GTEST_SKIP() << "no private mount namespace here (unshare/mount failed, see above: in a "
                    "chroot whose / is not a mount point, say)";
  }
  EXPECT_EQ(code, 0) << "see the child's stderr above";
}

TEST(JournalFailureTest, ReadOnlyDatabaseIsRefusedAtOpenNamingThePath) {
  if (geteuid() != 0) GTEST_SKIP() << "a read-only bind mount needs root";
  ScratchDir dir;
  std::string path = dir.File("warden.db");
  {
    auto journal = Journal::Open(path);
    ASSERT_TRUE(journal.ok());
    Event e = Row(1);
    ASSERT_TRUE((*journal)->Append(e, Durability::kDurable).ok());
  }
  std::string d = dir.path().string();
  int code = InMountNamespace([&] {
    if (mount(d.c_str(), d.c_str(), nullptr, MS_BIND, nullptr) != 0 ||
        mount(nullptr, d.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      std::perror("read-only bind mount");
      return 91;
    }
    auto journal = Journal::Open(path);
    if (journal.ok()) {
      std::fprintf(stderr, "a read-only journal was opened\n");
      return 2;
    }
    const std::string m = journal.status().message();
    if (m.find(path) == std::string::npos) {
      std::fprintf(stderr, "message does not name the path: %s\n", m.c_str());
      return 3;
    }
    std::fprintf(stderr, "(expected) %s\n", m.c_str());
    return 0;
  });
  if (code == kNoMountNamespace) {
    GTEST_SKIP() << "no private mount namespace here (unshare/mount failed, see above: in a "
                    "chroot whose / is not a mount point, say)";
  }
  EXPECT_EQ(code, 0) << "see the child's stderr above";
  EXPECT_EQ(IntegrityCheck(path), "ok");
}

}  // namespace
}  // namespace warden::journal
