#include "power_loss_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace warden::journal {
namespace {

// The unit in which an unsynced write survives or not under Unsynced::kSomeSurvive: the
// smallest write a disk makes atomically.
constexpr int64_t kSectorBytes = 512;

struct Operation {
  enum Kind { kWrite, kTruncate, kCreate, kDelete } kind;  // the last two change the directory
  int64_t offset = 0;  // kWrite: where the bytes go; kTruncate: the new size
  std::string bytes;   // kWrite only
};

// What a file holds: whether it exists, and its bytes.
struct Image {
  bool exists = false;
  std::string bytes;

  void Write(int64_t offset, std::string_view data) {
    const size_t end = static_cast<size_t>(offset) + data.size();
    if (bytes.size() < end) bytes.resize(end, '\0');
    std::copy(data.begin(), data.end(), bytes.begin() + offset);
  }
  void Apply(const Operation& op) {
    switch (op.kind) {
      case Operation::kWrite:
        Write(op.offset, op.bytes);
        break;
      case Operation::kTruncate:
        bytes.resize(static_cast<size_t>(op.offset), '\0');
        break;
      case Operation::kCreate:
        exists = true;
        bytes.clear();
        break;
      case Operation::kDelete:
        exists = false;
        bytes.clear();
        break;
    }
  }
};

// One named file as the model sees it.
struct TrackedFile {
  std::filesystem::path directory;  // where its name is
  Image durable;                    // what survives a power cut
  std::vector<Operation> unsynced;  // made since the last sync, oldest first
};

Image ReadImage(const std::string& path) {
  Image image;
  std::ifstream in(path, std::ios::binary);
  if (!in) return image;
  image.exists = true;
  image.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return image;
}

// What a cut leaves of `file` when each unsynced change survives at random (see the header).
Image SomeUnsyncedSurvive(const TrackedFile& file, std::mt19937_64& random) {
  Image image = file.durable;
  std::bernoulli_distribution survives(0.5);
  for (const Operation& op : file.unsynced) {
    if (op.kind != Operation::kWrite) {
      if (!survives(random)) break;  // later metadata and data depend on this one
      image.Apply(op);
      continue;
    }
    if (!image.exists) continue;
    int64_t at = op.offset;
    const int64_t end = op.offset + static_cast<int64_t>(op.bytes.size());
    while (at < end) {
      const int64_t sector_end = std::min(end, (at / kSectorBytes + 1) * kSectorBytes);
      if (survives(random)) {
        image.Write(at, std::string_view(op.bytes).substr(static_cast<size_t>(at - op.offset),
                                                          static_cast<size_t>(sector_end - at)));
      }
      at = sector_end;
    }
  }
  return image;
}

void WriteImage(const std::string& path, const Image& image) {
  std::error_code ec;
  if (!image.exists) {
    std::filesystem::remove(path, ec);
    return;
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(image.bytes.data(), static_cast<std::streamsize>(image.bytes.size()));
  if (!out) throw std::runtime_error("PowerLossVfs: cannot rewrite " + path);
}

}  // namespace

struct PowerLossVfs::State {
  sqlite3_vfs vfs{};
  sqlite3_vfs* real = nullptr;  // the default VFS underneath
  std::mutex mu;
  std::map<std::string, TrackedFile> files;  // by full path; node addresses are stable
  int64_t operations = 0;
  int64_t cut_after = -1;  // counted operations left before the cut; -1: none armed
  bool off = false;

  // Counts one operation about to be made. False when power is off, or goes off now.
  bool Count() {
    if (off) return false;
    if (cut_after == 0) {
      off = true;
      return false;
    }
    if (cut_after > 0) --cut_after;
    ++operations;
    return true;
  }

  // A directory's fsync: the latest creation or deletion of every file in it survives a cut
  // from now on (the data written since stays as unsynced as it was).
  void SyncDirectory(const std::filesystem::path& directory) {
    for (auto& [path, file] : files) {
      if (file.directory != directory) continue;
      auto last =
          std::find_if(file.unsynced.rbegin(), file.unsynced.rend(), [](const Operation& op) {
            return op.kind == Operation::kCreate || op.kind == Operation::kDelete;
          });
      if (last == file.unsynced.rend()) continue;
      file.durable.Apply(*last);
      file.unsynced.erase(file.unsynced.begin(), last.base());
    }
  }

  // The model of `path`, made from what is on disk when the VFS first meets it.
  TrackedFile& Track(const std::string& path) {
    auto it = files.find(path);
    if (it != files.end()) return it->second;
    TrackedFile file;
    file.directory = std::filesystem::path(path).parent_path();
    file.durable = ReadImage(path);
    return files.emplace(path, std::move(file)).first->second;
  }
};

namespace {

using State = PowerLossVfs::State;

// The file object SQLite allocates (szOsFile bytes): this header, then the real file's.
struct ShimFile {
  sqlite3_file base;
  State* state;
  TrackedFile* tracked;  // null: a temporary file, passed straight through
  bool sync_directory;   // the next sync also syncs the directory, as the unix VFS does

  sqlite3_file* real() { return reinterpret_cast<sqlite3_file*>(this + 1); }
};

ShimFile* Shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
sqlite3_file* Real(sqlite3_file* f) { return Shim(f)->real(); }
const sqlite3_io_methods* RealMethods(sqlite3_file* f) { return Real(f)->pMethods; }
State* StateOf(sqlite3_vfs* vfs) { return static_cast<State*>(vfs->pAppData); }
sqlite3_vfs* RealVfs(sqlite3_vfs* vfs) { return StateOf(vfs)->real; }

// ---- file methods ----

int Close(sqlite3_file* f) { return RealMethods(f)->xClose(Real(f)); }

int Read(sqlite3_file* f, void* buffer, int amount, sqlite3_int64 offset) {
  ShimFile* s = Shim(f);
  if (!s->tracked) return RealMethods(f)->xRead(Real(f), buffer, amount, offset);
  std::lock_guard lock(s->state->mu);
  if (s->state->off) return SQLITE_IOERR_READ;
  return RealMethods(f)->xRead(Real(f), buffer, amount, offset);
}

int Write(sqlite3_file* f, const void* buffer, int amount, sqlite3_int64 offset) {
  ShimFile* s = Shim(f);
  if (!s->tracked) return RealMethods(f)->xWrite(Real(f), buffer, amount, offset);
  std::lock_guard lock(s->state->mu);
  if (!s->state->Count()) return SQLITE_IOERR_WRITE;
  int rc = RealMethods(f)->xWrite(Real(f), buffer, amount, offset);
  if (rc == SQLITE_OK) {
    s->tracked->unsynced.push_back(
        {Operation::kWrite, offset,
         std::string(static_cast<const char*>(buffer), static_cast<size_t>(amount))});
  }
  return rc;
}

int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  ShimFile* s = Shim(f);
  if (!s->tracked) return RealMethods(f)->xTruncate(Real(f), size);
  std::lock_guard lock(s->state->mu);
  if (!s->state->Count()) return SQLITE_IOERR_TRUNCATE;
  int rc = RealMethods(f)->xTruncate(Real(f), size);
  if (rc == SQLITE_OK) s->tracked->unsynced.push_back({Operation::kTruncate, size, {}});
  return rc;
}

int Sync(sqlite3_file* f, int flags) {
  ShimFile* s = Shim(f);
  if (!s->tracked) return RealMethods(f)->xSync(Real(f), flags);
  std::lock_guard lock(s->state->mu);
  if (!s->state->Count()) return SQLITE_IOERR_FSYNC;
  // The durable image is what survives; the real file needs no fsync of its own. The file's
  // name is taken to be durable once its data is (as ext4 does for a new file's first fsync).
  TrackedFile& file = *s->tracked;
  for (const Operation& op : file.unsynced) file.durable.Apply(op);
  file.unsynced.clear();
  file.durable.exists = true;
  if (s->sync_directory) {
    s->sync_directory = false;
    s->state->SyncDirectory(file.directory);
  }
  return SQLITE_OK;
}

int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  ShimFile* s = Shim(f);
  if (!s->tracked) return RealMethods(f)->xFileSize(Real(f), size);
  std::lock_guard lock(s->state->mu);
  if (s->state->off) return SQLITE_IOERR_FSTAT;
  return RealMethods(f)->xFileSize(Real(f), size);
}

int Lock(sqlite3_file* f, int level) { return RealMethods(f)->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return RealMethods(f)->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return RealMethods(f)->xCheckReservedLock(Real(f), out);
}

int FileControl(sqlite3_file* f, int op, void* arg) {
  // The unix VFS grows a file for these hints by writing behind xWrite's back; they only
  // save work, so they are dropped and every change stays visible to the model.
  if (op == SQLITE_FCNTL_SIZE_HINT || op == SQLITE_FCNTL_CHUNK_SIZE) return SQLITE_OK;
  return RealMethods(f)->xFileControl(Real(f), op, arg);
}

int SectorSize(sqlite3_file* f) { return RealMethods(f)->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return RealMethods(f)->xDeviceCharacteristics(Real(f));
}

int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  return RealMethods(f)->xShmMap(Real(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return RealMethods(f)->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { RealMethods(f)->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int delete_flag) {
  return RealMethods(f)->xShmUnmap(Real(f), delete_flag);
}

const sqlite3_io_methods kFileMethods = {
    2,  // version 2: shared memory, but no memory-mapped I/O behind xWrite's back
    Close,       Read,       Write,
    Truncate,    Sync,       FileSize,
    Lock,        Unlock,     CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics,
    ShmMap,      ShmLock,    ShmBarrier,
    ShmUnmap,
    nullptr,  // xFetch
    nullptr,  // xUnfetch
};

// ---- VFS methods ----

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
  State* state = StateOf(vfs);
  ShimFile* s = Shim(f);
  s->base.pMethods = nullptr;
  s->state = state;
  s->tracked = nullptr;
  s->sync_directory = false;
  s->real()->pMethods = nullptr;
  const bool tracked = name != nullptr && (flags & SQLITE_OPEN_DELETEONCLOSE) == 0;
  std::unique_lock lock(state->mu, std::defer_lock);
  bool existed = false;
  if (tracked) {
    lock.lock();
    if (state->off) return SQLITE_IOERR;
    std::error_code ec;
    existed = std::filesystem::exists(name, ec);
  }
  int rc = state->real->xOpen(state->real, name, s->real(), flags, out_flags);
  if (rc != SQLITE_OK) {
    if (s->real()->pMethods) s->real()->pMethods->xClose(s->real());
    return rc;
  }
  if (tracked) {
    TrackedFile& file = state->Track(name);
    if (!existed) file.unsynced.push_back({Operation::kCreate, 0, {}});
    s->tracked = &file;
    // The unix VFS syncs the directory at the first sync of a journal it created.
    const int type = flags & 0x0FFF00;  // the file type bits, as the unix VFS reads them
    s->sync_directory = (flags & SQLITE_OPEN_CREATE) != 0 &&
                        (type == SQLITE_OPEN_WAL || type == SQLITE_OPEN_MAIN_JOURNAL ||
                         type == SQLITE_OPEN_SUPER_JOURNAL);
  }
  s->base.pMethods = &kFileMethods;
  return SQLITE_OK;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
  State* state = StateOf(vfs);
  std::lock_guard lock(state->mu);
  if (!state->Count()) return SQLITE_IOERR_DELETE;
  TrackedFile& file = state->Track(name);
  int rc = state->real->xDelete(state->real, name, 0);
  if (rc != SQLITE_OK) return rc;
  file.unsynced.push_back({Operation::kDelete, 0, {}});
  if (sync_dir) state->SyncDirectory(file.directory);
  return SQLITE_OK;
}

int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return RealVfs(vfs)->xAccess(RealVfs(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return RealVfs(vfs)->xFullPathname(RealVfs(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xDlOpen(RealVfs(vfs), name);
}
void DlError(sqlite3_vfs* vfs, int size, char* out) {
  RealVfs(vfs)->xDlError(RealVfs(vfs), size, out);
}
using Symbol = void (*)(void);
Symbol DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol) {
  return RealVfs(vfs)->xDlSym(RealVfs(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { RealVfs(vfs)->xDlClose(RealVfs(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xRandomness(RealVfs(vfs), size, out);
}
int Sleep(sqlite3_vfs* vfs, int microseconds) {
  return RealVfs(vfs)->xSleep(RealVfs(vfs), microseconds);
}
int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return RealVfs(vfs)->xCurrentTime(RealVfs(vfs), out);
}
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return RealVfs(vfs)->xGetLastError(RealVfs(vfs), size, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return RealVfs(vfs)->xCurrentTimeInt64(RealVfs(vfs), out);
}

}  // namespace

PowerLossVfs::PowerLossVfs() : state_(std::make_unique<State>()) {
  sqlite3_initialize();
  state_->real = sqlite3_vfs_find(nullptr);
  if (state_->real == nullptr || state_->real->iVersion < 2) {
    throw std::runtime_error("PowerLossVfs: no default VFS of version 2 or later");
  }
  sqlite3_vfs& v = state_->vfs;
  v.iVersion = 2;
  v.szOsFile = static_cast<int>(sizeof(ShimFile)) + state_->real->szOsFile;
  v.mxPathname = state_->real->mxPathname;
  v.zName = kName;
  v.pAppData = state_.get();
  v.xOpen = Open;
  v.xDelete = Delete;
  v.xAccess = Access;
  v.xFullPathname = FullPathname;
  v.xDlOpen = DlOpen;
  v.xDlError = DlError;
  v.xDlSym = DlSym;
  v.xDlClose = DlClose;
  v.xRandomness = Randomness;
  v.xSleep = Sleep;
  v.xCurrentTime = CurrentTime;
  v.xGetLastError = GetLastError;
  v.xCurrentTimeInt64 = CurrentTimeInt64;
  if (sqlite3_vfs_register(&v, 0) != SQLITE_OK) {
    throw std::runtime_error("PowerLossVfs: cannot register the VFS");
  }
}

PowerLossVfs::~PowerLossVfs() { sqlite3_vfs_unregister(&state_->vfs); }

void PowerLossVfs::CutAfter(int64_t operations) {
  std::lock_guard lock(state_->mu);
  state_->cut_after = operations;
}

bool PowerLossVfs::powered_off() const {
  std::lock_guard lock(state_->mu);
  return state_->off;
}

int64_t PowerLossVfs::operations() const {
  std::lock_guard lock(state_->mu);
  return state_->operations;
}

void PowerLossVfs::Restart(Unsynced unsynced, std::mt19937_64& random) {
  std::lock_guard lock(state_->mu);
  for (auto& [path, file] : state_->files) {
    Image image =
        unsynced == Unsynced::kSomeSurvive ? SomeUnsyncedSurvive(file, random) : file.durable;
    WriteImage(path, image);
    file.durable = std::move(image);
    file.unsynced.clear();
    // The WAL index is rebuilt from the WAL by the first connection to open the database.
    std::error_code ec;
    std::filesystem::remove(path + "-shm", ec);
  }
  state_->off = false;
  state_->cut_after = -1;
  state_->operations = 0;
}

void PowerLossVfs::Forget() {
  std::lock_guard lock(state_->mu);
  state_->files.clear();
}

}  // namespace warden::journal
