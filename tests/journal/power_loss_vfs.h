// PowerLossVfs: a test-only SQLite VFS that loses, at a simulated power cut, what was written
// but not synced: the fault-injection layer behind the journal's power-loss test.
//
// The model. The VFS wraps SQLite's default (unix) VFS, and every write and truncation goes
// through to the real file, so SQLite reads back what it wrote. Beside each real file the
// VFS keeps that file's durable image (its content as of the last xSync, and whether it
// exists) and the operations since then (writes, truncations, creation, deletion). What
// makes them durable is what makes them durable on Linux:
//  - xSync of a file applies all its operations to its durable image, its name included
//    (as ext4 does at a new file's first fsync);
//  - a directory sync makes the latest creation or deletion of every file in that directory
//    durable, and nothing else. It happens where the unix VFS fsyncs the directory: at the
//    first xSync of a WAL or rollback journal it created, and at xDelete with syncDir.
// Real fsyncs are skipped: the durable image, not the disk, is what survives.
//
// A power cut has two halves:
//  - CutAfter(n) / CutNow(): the machine stops. From the cut on, every write, truncation,
//    sync, delete and open fails with an I/O error, so nothing more reaches the disk; reads
//    fail too. Closing still works, so the test can tear its connections down.
//  - Restart(): with every connection closed, the disk comes back as power loss leaves it.
//    Each file is rewritten from its durable image (a file never synced since it was
//    created is removed) and the unsynced operations are lost. Under
//    Unsynced::kSomeSurvive each unsynced write instead survives or not 512-byte sector by
//    sector at random, in the order it was made, and a lost creation, deletion or
//    truncation loses every later operation on that file too (file system metadata is
//    written in order). The -shm file of each database is deleted: the WAL index is memory,
//    not durable state, and SQLite rebuilds it from the WAL.
//
// Memory-mapped I/O is not offered (the file methods are version 2), and size and chunk
// hints are ignored, so every change to a file passes through xWrite or xTruncate.
//
// Counted operations: xWrite, xTruncate, xSync and xDelete on named files. Temporary files
// (no name, or deleted on close) pass straight through and are not counted.
//
// Thread-safety: the VFS callbacks serialize on one mutex. Restart() and Forget() must not
// run while a connection through the VFS is open.
#pragma once

#include <cstdint>
#include <memory>
#include <random>

namespace warden::journal {

class PowerLossVfs {
 public:
  static constexpr const char* kName = "powerloss";

  enum class Unsynced {
    kAllLost,      // every change since the last sync is lost
    kSomeSurvive,  // each unsynced sector survives or not at random
  };

  // Registers the VFS under kName (not as the default). At most one at a time per process.
  PowerLossVfs();
  // Unregisters it; no connection through it may be open.
  ~PowerLossVfs();
  PowerLossVfs(const PowerLossVfs&) = delete;
  PowerLossVfs& operator=(const PowerLossVfs&) = delete;

  // Power fails after `operations` more counted operations: that many succeed, and the next
  // one and every later one fail. Replaces any earlier arming.
  void CutAfter(int64_t operations);
  // Power fails now.
  void CutNow() { CutAfter(0); }
  // True from the cut until Restart().
  bool powered_off() const;
  // Counted operations made since construction or the last Restart().
  int64_t operations() const;

  // Brings the disk back as the cut left it (see the model above), deletes the -shm files,
  // and powers on with no cut armed. `random` draws which unsynced sectors survive under
  // kSomeSurvive; it is not used under kAllLost. Call with every connection closed; the
  // machine need not have been cut (then it is cut now).
  void Restart(Unsynced unsynced, std::mt19937_64& random);

  // Drops what the VFS knows of every file (their directory is gone). Call with every
  // connection closed.
  void Forget();

  struct State;

 private:
  std::unique_ptr<State> state_;
};

}  // namespace warden::journal
