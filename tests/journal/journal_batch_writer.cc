// Appends batches of `batch_size` events to the journal at argv[1] forever, each batch
// tagged with its number in execution_id "batch-N", and prints "committed N" after each
// commit. The kill-mid-batch test SIGKILLs it and checks every batch is whole or absent.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "journal/journal.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s DB BATCH_SIZE\n", argv[0]);
    return 64;
  }
  auto journal = warden::journal::Journal::Open(argv[1]);
  if (!journal.ok()) {
    std::fprintf(stderr, "%s\n", journal.status().ToString().c_str());
    return 1;
  }
  const int batch_size = std::atoi(argv[2]);
  // Built once, so that nearly all of the writer's time is spent inside a transaction.
  std::vector<warden::journal::Event> events(batch_size);
  for (int i = 0; i < batch_size; ++i) {
    events[i].kind = "test.row";
    events[i].payload =
        "{\"i\":" + std::to_string(i) + ",\"pad\":\"" + std::string(200, 'x') + "\"}";
  }
  for (int batch = 0;; ++batch) {
    for (auto& e : events) {
      e.execution_id = "batch-" + std::to_string(batch);
      e.at_ms = 0;
    }
    auto r = (*journal)->Append(events, warden::journal::Durability::kCrashSafe);
    if (!r.ok()) {
      std::fprintf(stderr, "%s\n", r.status().ToString().c_str());
      return 1;
    }
    std::printf("committed %d\n", batch);
    std::fflush(stdout);
  }
}
