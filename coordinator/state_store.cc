#include "coordinator/state_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <set>
#include <type_traits>
#include <utility>

#include "common/codec.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "coordinator/internal/durable_files.h"
#include "fmt/format.h"

namespace samverka::coordinator {
namespace {

using internal::ErrnoError;
using internal::ReadFile;
using internal::WriteFileAtomically;

constexpr int kSchemaVersion = 2;
constexpr char kDatabaseFile[] = "state.db";
constexpr char kLockFile[] = "LOCK";
constexpr char kCheckpointDir[] = "checkpoints";
const std::string kZeroHash(64, '0');

constexpr char kSchema[] = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE federation (id TEXT NOT NULL, created_unix_ms INTEGER NOT NULL);
CREATE TABLE rounds (
  study TEXT NOT NULL, round INTEGER NOT NULL, succeeded INTEGER NOT NULL,
  failure_reason TEXT NOT NULL, model_digest TEXT NOT NULL, started_unix_ms INTEGER NOT NULL,
  finished_unix_ms INTEGER NOT NULL, bytes_up INTEGER NOT NULL, bytes_down INTEGER NOT NULL,
  PRIMARY KEY (study, round));
CREATE TABLE participants (
  study TEXT NOT NULL, round INTEGER NOT NULL, position INTEGER NOT NULL, client TEXT NOT NULL,
  PRIMARY KEY (study, round, position), UNIQUE (study, round, client),
  FOREIGN KEY (study, round) REFERENCES rounds(study, round));
CREATE TABLE metrics (
  study TEXT NOT NULL, round INTEGER NOT NULL, name TEXT NOT NULL, value REAL,
  PRIMARY KEY (study, round, name), FOREIGN KEY (study, round) REFERENCES rounds(study, round));
CREATE TABLE checkpoints (
  study TEXT NOT NULL, round INTEGER NOT NULL, file TEXT NOT NULL, model_digest TEXT NOT NULL,
  size_bytes INTEGER NOT NULL, PRIMARY KEY (study, round));
CREATE TABLE studies (
  id TEXT PRIMARY KEY, seq INTEGER NOT NULL UNIQUE, name TEXT NOT NULL, kind TEXT NOT NULL,
  dataset TEXT NOT NULL, model TEXT NOT NULL, rounds INTEGER NOT NULL, state TEXT NOT NULL,
  reason TEXT NOT NULL, submitted_by TEXT NOT NULL, submitted_unix_ms INTEGER NOT NULL,
  manifest BLOB NOT NULL, model_sha256 TEXT NOT NULL, model_bytes INTEGER NOT NULL,
  nonce TEXT NOT NULL, operator_certificate TEXT NOT NULL, signature BLOB NOT NULL);
CREATE TABLE audit (
  seq INTEGER PRIMARY KEY, unix_ms INTEGER NOT NULL, event TEXT NOT NULL,
  subject TEXT NOT NULL, details TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE audit_head (
  id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
)sql";

std::string JoinPath(const std::string& dir, std::string_view name) {
  return (std::filesystem::path(dir) / std::filesystem::path(name)).string();
}

// The legacy single-run study "" keeps its checkpoints where they always
// were; a submitted study's go into a folder of its own.
std::string CheckpointName(const std::string& study, int64_t round) {
  if (study.empty()) return fmt::format("{}/round-{}.svtb", kCheckpointDir, round);
  return fmt::format("{}/{}/round-{}.svtb", kCheckpointDir, study, round);
}

int64_t UnixMillis(absl::Time t) { return absl::ToUnixMillis(t); }

// ---- SQLite ------------------------------------------------------------

absl::Status SqliteError(int code, sqlite3* db, std::string_view what,
                         const std::string& path) {
  std::string message =
      fmt::format("{} in {}: {}", what, path,
                  db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(code));
  switch (code & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_CANTOPEN:
      return absl::PermissionDeniedError(message);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(message);
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
      return absl::InvalidArgumentError(message);
    default:
      return absl::InternalError(message);
  }
}

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqliteHandle = std::unique_ptr<sqlite3, SqliteCloser>;

absl::StatusOr<SqliteHandle> OpenDatabase(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  SqliteHandle db(raw);
  if (rc != SQLITE_OK)
    return SqliteError(rc, db.get(), "cannot open database", path);
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), 5000);
  return db;
}

absl::Status Exec(sqlite3* db, const std::string& path, const char* sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return absl::OkStatus();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  absl::Status status =
      SqliteError(rc, nullptr, fmt::format("'{}' failed", sql), path);
  return absl::Status(
      status.code(),
      fmt::format("{}: {}", std::string(status.message()), message));
}

// A prepared statement, kept for the life of the connection.
class Statement {
 public:
  ~Statement() { sqlite3_finalize(stmt_); }
  absl::Status Prepare(sqlite3* db, const std::string& path, const char* sql) {
    db_ = db;
    path_ = &path;
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_,
                                nullptr);
    if (rc != SQLITE_OK)
      return SqliteError(rc, db, fmt::format("cannot prepare '{}'", sql), path);
    return absl::OkStatus();
  }
  sqlite3_stmt* get() const { return stmt_; }
  sqlite3* db() const { return db_; }
  const std::string& path() const { return *path_; }

 private:
  sqlite3* db_ = nullptr;
  const std::string* path_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

// One use of a Statement: binds, steps, reads columns, and resets the
// statement when it goes out of scope (an unreset statement would pin a
// read snapshot).
class Query {
 public:
  explicit Query(Statement& statement) : s_(statement) {}
  ~Query() {
    sqlite3_reset(s_.get());
    sqlite3_clear_bindings(s_.get());
  }
  // Binds the next parameters, in order: integers (and bool), doubles
  // (SQLite stores NaN as NULL; Double() reads it back as NaN) or text.
  template <typename... Values>
  Query& Bind(const Values&... values) {
    (BindOne(values), ...);
    return *this;
  }
  // True for a row, false when done.
  absl::StatusOr<bool> Step() {
    if (bind_rc_ != SQLITE_OK) {
      return SqliteError(bind_rc_, s_.db(), "cannot bind a parameter",
                         s_.path());
    }
    int rc = sqlite3_step(s_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(rc, s_.db(),
                       fmt::format("'{}' failed", sqlite3_sql(s_.get())),
                       s_.path());
  }
  absl::Status Run() { return Step().status(); }
  int64_t Int(int column) const {
    return sqlite3_column_int64(s_.get(), column);
  }
  double Double(int column) const {
    if (sqlite3_column_type(s_.get(), column) == SQLITE_NULL) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    return sqlite3_column_double(s_.get(), column);
  }
  std::string Text(int column) const {
    const auto* text = sqlite3_column_blob(s_.get(), column);
    int size = sqlite3_column_bytes(s_.get(), column);
    return text == nullptr ? std::string()
                           : std::string(static_cast<const char*>(text), size);
  }

 private:
  template <typename T>
  void BindOne(const T& value) {
    const int index = ++next_;
    int rc;
    if constexpr (std::is_floating_point_v<T>) {
      rc = sqlite3_bind_double(s_.get(), index, value);
    } else if constexpr (std::is_integral_v<T>) {
      rc = sqlite3_bind_int64(s_.get(), index,
                              static_cast<sqlite3_int64>(value));
    } else {
      const std::string_view text(value);
      rc = sqlite3_bind_text64(s_.get(), index, text.data(), text.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8);
    }
    if (rc != SQLITE_OK && bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  Statement& s_;
  int next_ = 0;
  int bind_rc_ = SQLITE_OK;
};

// The canonical encoding hashed for an audit entry: a domain tag, seq and
// unix_ms as 8-byte big-endian two's complement, then event, subject,
// details and prev_hash, each as an 8-byte big-endian length and its bytes.
std::string AuditHash(int64_t seq, int64_t unix_ms, std::string_view event,
                      std::string_view subject, std::string_view details,
                      std::string_view prev_hash) {
  std::string encoded = "samverka.audit.v1";
  auto put_u64 = [&encoded](uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8)
      encoded.push_back(static_cast<char>(v >> shift));
  };
  put_u64(static_cast<uint64_t>(seq));
  put_u64(static_cast<uint64_t>(unix_ms));
  for (std::string_view field : {event, subject, details, prev_hash}) {
    put_u64(field.size());
    encoded.append(field);
  }
  return Sha256Hex(encoded);
}

// Store-made details: invalid UTF-8 in names is replaced rather than fatal.
std::string DumpDetails(const nlohmann::json& details) {
  return details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

absl::Status TakeLock(const std::string& state_dir, int* lock_fd) {
  const std::string path = JoinPath(state_dir, kLockFile);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError(errno, "cannot open lock file", path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int error = errno;
    char pid[32] = {};
    ssize_t n = ::pread(fd, pid, sizeof(pid) - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK) {
      std::string holder =
          n > 0 ? std::string(pid, static_cast<size_t>(n)) : "?";
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' '))
        holder.pop_back();
      return absl::FailedPreconditionError(fmt::format(
          "state dir {} is in use by another coordinator (process {} holds {})",
          state_dir, holder, path));
    }
    return ErrnoError(error, "cannot lock", path);
  }
  std::string pid = fmt::format("{}\n", ::getpid());
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    int error = errno;
    ::close(fd);
    return ErrnoError(error, "cannot write", path);
  }
  *lock_fd = fd;
  return absl::OkStatus();
}

}  // namespace

absl::Status StateStoreOptions::Validate() const {
  if (keep_last_checkpoints < 1) {
    return absl::InvalidArgumentError(
        fmt::format("keep_last_checkpoints must be at least 1, got {}",
                    keep_last_checkpoints));
  }
  if (!clock) return absl::InvalidArgumentError("clock must be set");
  return absl::OkStatus();
}

struct StateStore::Db {
  SqliteHandle handle;  // declared first: closed after the statements
  std::string path;
  Statement begin, commit, rollback;
  Statement last_round, count_checkpoints, insert_round, insert_participant,
      insert_metric;
  Statement insert_checkpoint, latest_checkpoint, checkpoint_by_round, prunable,
      delete_checkpoint;
  Statement rounds, participants_of, metrics_of;
  Statement audit_tail, insert_audit, set_audit_head;

  absl::Status PrepareAll() {
    sqlite3* db = handle.get();
    const std::pair<Statement*, const char*> all[] = {
        {&begin, "BEGIN IMMEDIATE"},
        {&commit, "COMMIT"},
        {&rollback, "ROLLBACK"},
        {&last_round, "SELECT COALESCE(MAX(round), 0) FROM rounds WHERE study = ?"},
        {&count_checkpoints, "SELECT COUNT(*) FROM checkpoints WHERE study = ?"},
        {&insert_round,
         "INSERT INTO rounds (study, round, succeeded, failure_reason, model_digest, "
         "started_unix_ms, finished_unix_ms, bytes_up, bytes_down) "
         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"},
        {&insert_participant,
         "INSERT INTO participants (study, round, position, client) VALUES (?, ?, ?, ?)"},
        {&insert_metric,
         "INSERT INTO metrics (study, round, name, value) VALUES (?, ?, ?, ?)"},
        {&insert_checkpoint,
         "INSERT INTO checkpoints (study, round, file, model_digest, size_bytes) "
         "VALUES (?, ?, ?, ?, ?)"},
        {&latest_checkpoint,
         "SELECT round, file, model_digest FROM checkpoints WHERE study = ? "
         "ORDER BY round DESC LIMIT 1"},
        {&checkpoint_by_round,
         "SELECT round, file, model_digest FROM checkpoints WHERE study = ? AND round = ?"},
        {&prunable,
         "SELECT round, file FROM checkpoints WHERE study = ? AND round > 0 "
         "ORDER BY round DESC LIMIT -1 OFFSET ?"},
        {&delete_checkpoint, "DELETE FROM checkpoints WHERE study = ? AND round = ?"},
        {&rounds,
         "SELECT round, succeeded, failure_reason, model_digest, "
         "started_unix_ms, finished_unix_ms, bytes_up, bytes_down "
         "FROM rounds WHERE study = ? ORDER BY round DESC LIMIT ?"},
        {&participants_of,
         "SELECT client FROM participants WHERE study = ? AND round = ? ORDER BY position"},
        {&metrics_of,
         "SELECT name, value FROM metrics WHERE study = ? AND round = ? ORDER BY name"},
        {&audit_tail, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1"},
        {&insert_audit,
         "INSERT INTO audit (seq, unix_ms, event, subject, details, "
         "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)"},
        {&set_audit_head,
         "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) "
         "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, "
         "hash = excluded.hash"},
    };
    for (const auto& [statement, sql] : all)
      SV_RETURN_IF_ERROR(statement->Prepare(db, path, sql));
    return absl::OkStatus();
  }

  // Runs `body` in a write transaction; rolls back if it fails.
  template <typename Body>
  absl::Status InTransaction(Body body) {
    SV_RETURN_IF_ERROR(Query(begin).Run());
    absl::Status status = body();
    if (status.ok()) status = Query(commit).Run();
    if (!status.ok() && !sqlite3_get_autocommit(handle.get())) {
      (void)Query(rollback).Run();
    }
    return status;
  }
};

struct StateStore::Shared {
  absl::Mutex mutex;
  std::unique_ptr<Db> db;
  int lock_fd = -1;
  ~Shared() {
    {
      absl::MutexLock lock(&mutex);
      db.reset();  // closes SQLite before the directory lock is released
    }
    ::close(lock_fd);
  }
};

namespace {

// Creates the schema of a new database, or checks the version and the
// federation of an existing one. Called inside a write transaction.
absl::Status InitSchema(sqlite3* db, const std::string& db_path,
                        const std::string& state_dir,
                        const std::string& federation_id, int64_t now_ms,
                        bool* created) {
  Statement tables;
  SV_RETURN_IF_ERROR(
      tables.Prepare(db, db_path,
                     "SELECT name FROM sqlite_schema "
                     "WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"));
  std::set<std::string> names;
  {
    Query q(tables);
    while (true) {
      SV_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      names.insert(q.Text(0));
    }
  }
  *created = names.empty();
  if (names.empty()) {
    SV_RETURN_IF_ERROR(Exec(db, db_path, kSchema));
    Statement insert;
    SV_RETURN_IF_ERROR(
        insert.Prepare(db, db_path, "INSERT INTO schema_version VALUES (?)"));
    SV_RETURN_IF_ERROR(Query(insert).Bind(int64_t{kSchemaVersion}).Run());
    Statement federation;
    SV_RETURN_IF_ERROR(federation.Prepare(
        db, db_path, "INSERT INTO federation VALUES (?, ?)"));
    return Query(federation).Bind(federation_id, now_ms).Run();
  }
  if (!names.count("schema_version") || !names.count("federation")) {
    return absl::FailedPreconditionError(
        fmt::format("{} is not a Samverka state database (state dir {})",
                    db_path, state_dir));
  }
  Statement version;
  SV_RETURN_IF_ERROR(
      version.Prepare(db, db_path, "SELECT version FROM schema_version"));
  Query v(version);
  SV_ASSIGN_OR_RETURN(bool has_version, v.Step());
  if (!has_version || v.Int(0) != kSchemaVersion) {
    return absl::FailedPreconditionError(fmt::format(
        "{} has schema version {}, this build reads version {}", db_path,
        has_version ? std::to_string(v.Int(0)) : "(none)", kSchemaVersion));
  }
  Statement federation;
  SV_RETURN_IF_ERROR(
      federation.Prepare(db, db_path, "SELECT id FROM federation"));
  Query f(federation);
  SV_ASSIGN_OR_RETURN(bool has_federation, f.Step());
  if (!has_federation) {
    return absl::DataLossError(
        fmt::format("{} has no federation row", db_path));
  }
  if (f.Text(0) != federation_id) {
    return absl::FailedPreconditionError(
        fmt::format("state dir {} belongs to federation '{}', not '{}'",
                    state_dir, f.Text(0), federation_id));
  }
  return absl::OkStatus();
}

// Removes temp files a crash left in the checkpoint directory.
void RemoveTempFiles(const std::string& dir) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (entry.path().extension() == ".tmp")
      std::filesystem::remove(entry.path(), error);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::Open(
    const std::string& state_dir, const std::string& federation_id,
    StateStoreOptions options) {
  SV_RETURN_IF_ERROR(options.Validate());
  if (state_dir.empty())
    return absl::InvalidArgumentError("the state dir must not be empty");
  if (federation_id.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "the federation id for state dir {} must not be empty", state_dir));
  }
  const std::string checkpoint_dir = JoinPath(state_dir, kCheckpointDir);
  std::error_code error;
  std::filesystem::create_directories(checkpoint_dir, error);
  if (error) return ErrnoError(error.value(), "cannot create", checkpoint_dir);

  int lock_fd = -1;
  SV_RETURN_IF_ERROR(TakeLock(state_dir, &lock_fd));
  auto close_lock = [lock_fd] { ::close(lock_fd); };

  auto db = std::make_unique<Db>();
  db->path = JoinPath(state_dir, kDatabaseFile);
  absl::Status status = [&]() -> absl::Status {
    SV_ASSIGN_OR_RETURN(
        db->handle,
        OpenDatabase(db->path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE));
    sqlite3* handle = db->handle.get();
    // journal_mode answers with the mode in effect; anything but "wal" means
    // the file system refused it.
    Statement wal;
    SV_RETURN_IF_ERROR(
        wal.Prepare(handle, db->path, "PRAGMA journal_mode = WAL"));
    {
      Query q(wal);
      SV_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row || q.Text(0) != "wal") {
        return absl::FailedPreconditionError(
            fmt::format("cannot switch {} to WAL mode", db->path));
      }
    }
    SV_RETURN_IF_ERROR(
        Exec(handle, db->path,
             "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;"));
    SV_RETURN_IF_ERROR(Exec(handle, db->path, "BEGIN IMMEDIATE"));
    bool created = false;
    const int64_t now_ms = UnixMillis(options.clock());
    absl::Status init = InitSchema(handle, db->path, state_dir, federation_id,
                                   now_ms, &created);
    if (init.ok()) init = db->PrepareAll();
    if (init.ok() && created) {
      // The genesis entry; appended here because the store does not exist yet.
      const std::string details =
          DumpDetails({{"schema_version", kSchemaVersion}});
      const std::string hash = AuditHash(1, now_ms, "federation.created",
                                         federation_id, details, kZeroHash);
      init = Query(db->insert_audit)
                 .Bind(int64_t{1}, now_ms, "federation.created", federation_id,
                       details, kZeroHash, hash)
                 .Run();
      if (init.ok())
        init = Query(db->set_audit_head).Bind(int64_t{1}, hash).Run();
    }
    if (init.ok()) init = Exec(handle, db->path, "COMMIT");
    if (!init.ok() && !sqlite3_get_autocommit(handle))
      (void)Exec(handle, db->path, "ROLLBACK");
    return init;
  }();
  if (!status.ok()) {
    db.reset();
    close_lock();
    return status;
  }
  RemoveTempFiles(checkpoint_dir);
  auto shared = std::make_shared<Shared>();
  shared->db = std::move(db);
  shared->lock_fd = lock_fd;
  return std::unique_ptr<StateStore>(new StateStore(
      state_dir, federation_id, std::move(options), std::move(shared), ""));
}

StateStore::StateStore(std::string state_dir, std::string federation_id,
                       StateStoreOptions options, std::shared_ptr<Shared> shared,
                       std::string study)
    : state_dir_(std::move(state_dir)),
      federation_id_(std::move(federation_id)),
      options_(std::move(options)),
      shared_(std::move(shared)),
      study_(std::move(study)),
      mutex_(shared_->mutex),
      db_(shared_->db) {}

StateStore::~StateStore() = default;

std::string StateStore::RoundSubject(int64_t round) const {
  return study_.empty() ? fmt::format("round {}", round)
                        : fmt::format("study {} round {}", study_, round);
}

absl::StatusOr<std::unique_ptr<StateStore>> StateStore::ForStudy(
    const std::string& id) {
  bool valid = id.size() <= 64;
  for (char c : id) {
    valid = valid && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                      c == '-' || c == '_');
  }
  if (!valid) {
    return absl::InvalidArgumentError(fmt::format(
        "'{}' is not a study id (1 to 64 of 0-9, a-z, '-', '_')", id));
  }
  if (id.empty()) {  // the single-run study, whose files are the federation's
    return std::unique_ptr<StateStore>(
        new StateStore(state_dir_, federation_id_, options_, shared_, id));
  }
  const std::string dir = JoinPath(JoinPath(state_dir_, kCheckpointDir), id);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) return ErrnoError(error.value(), "cannot create", dir);
  RemoveTempFiles(dir);
  return std::unique_ptr<StateStore>(
      new StateStore(state_dir_, federation_id_, options_, shared_, id));
}

namespace {

// Columns of `studies` in the order Studies() reads them.
constexpr char kStudyColumns[] =
    "id, seq, name, kind, dataset, model, rounds, state, reason, submitted_by, "
    "submitted_unix_ms, manifest, model_sha256, model_bytes, nonce, "
    "operator_certificate, signature";

}  // namespace

absl::Status StateStore::AddStudy(const StudyRecord& s) {
  absl::MutexLock lock(&mutex_);
  return db_->InTransaction([&]() -> absl::Status {
    Statement exists, next, insert;
    sqlite3* h = db_->handle.get();
    SV_RETURN_IF_ERROR(exists.Prepare(h, db_->path, "SELECT 1 FROM studies WHERE id = ?"));
    {
      Query q(exists);
      SV_ASSIGN_OR_RETURN(bool row, q.Bind(s.id).Step());
      if (row) return absl::AlreadyExistsError(fmt::format("study {} exists already", s.id));
    }
    SV_RETURN_IF_ERROR(
        next.Prepare(h, db_->path, "SELECT COALESCE(MAX(seq), 0) + 1 FROM studies"));
    int64_t seq = 0;
    {
      Query n(next);
      SV_RETURN_IF_ERROR(n.Run());
      seq = n.Int(0);
    }
    const std::string sql = fmt::format(
        "INSERT INTO studies ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        kStudyColumns);
    SV_RETURN_IF_ERROR(insert.Prepare(h, db_->path, sql.c_str()));
    SV_RETURN_IF_ERROR(Query(insert)
                           .Bind(s.id, seq, s.name, s.kind, s.dataset, s.model, int64_t{s.rounds},
                                 s.state, s.reason, s.submitted_by, s.submitted_unix_ms, s.manifest,
                                 s.model_sha256, s.model_bytes, s.nonce, s.operator_certificate,
                                 s.signature)
                           .Run());
    return AppendAuditLocked(
        "study.submitted", fmt::format("study {}", s.id),
        DumpDetails({{"name", s.name},
                     {"kind", s.kind},
                     {"dataset", s.dataset},
                     {"model", s.model},
                     {"model_sha256", s.model_sha256},
                     {"manifest_sha256", Sha256Hex(s.manifest)},
                     {"submitted_by", s.submitted_by},
                     {"state", s.state}}));
  });
}

absl::Status StateStore::SetStudyState(const std::string& id, const std::string& state,
                                       const std::string& reason) {
  absl::MutexLock lock(&mutex_);
  return db_->InTransaction([&]() -> absl::Status {
    Statement update;
    SV_RETURN_IF_ERROR(update.Prepare(db_->handle.get(), db_->path,
                                      "UPDATE studies SET state = ?, reason = ? WHERE id = ?"));
    SV_RETURN_IF_ERROR(Query(update).Bind(state, reason, id).Run());
    if (sqlite3_changes(db_->handle.get()) != 1) {
      return absl::NotFoundError(fmt::format("no study {} in {}", id, db_->path));
    }
    nlohmann::json details = {{"state", state}};
    if (!reason.empty()) details["reason"] = reason;
    return AppendAuditLocked(fmt::format("study.{}", state), fmt::format("study {}", id),
                             DumpDetails(details));
  });
}

absl::StatusOr<std::vector<StudyRecord>> StateStore::SelectStudies(const std::string& id) {
  absl::MutexLock lock(&mutex_);
  Statement select;
  const std::string sql =
      fmt::format("SELECT {} FROM studies {} ORDER BY seq", kStudyColumns,
                  id.empty() ? "" : "WHERE id = ?");
  SV_RETURN_IF_ERROR(select.Prepare(db_->handle.get(), db_->path, sql.c_str()));
  std::vector<StudyRecord> studies;
  Query q(select);
  if (!id.empty()) q.Bind(id);
  while (true) {
    SV_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) break;
    StudyRecord& s = studies.emplace_back();
    s.id = q.Text(0);
    s.seq = q.Int(1);
    s.name = q.Text(2);
    s.kind = q.Text(3);
    s.dataset = q.Text(4);
    s.model = q.Text(5);
    s.rounds = static_cast<int>(q.Int(6));
    s.state = q.Text(7);
    s.reason = q.Text(8);
    s.submitted_by = q.Text(9);
    s.submitted_unix_ms = q.Int(10);
    s.manifest = q.Text(11);
    s.model_sha256 = q.Text(12);
    s.model_bytes = q.Int(13);
    s.nonce = q.Text(14);
    s.operator_certificate = q.Text(15);
    s.signature = q.Text(16);
  }
  return studies;
}

absl::StatusOr<std::vector<StudyRecord>> StateStore::Studies() { return SelectStudies(""); }

absl::StatusOr<std::optional<StudyRecord>> StateStore::FindStudy(const std::string& id) {
  if (id.empty()) return std::nullopt;  // the single-run study is not in the table
  SV_ASSIGN_OR_RETURN(std::vector<StudyRecord> studies, SelectStudies(id));
  if (studies.empty()) return std::nullopt;
  return std::move(studies.front());
}

absl::StatusOr<std::optional<Checkpoint>> StateStore::LoadCheckpointLocked(
    bool latest, int64_t round) {
  Checkpoint checkpoint;
  std::string file;
  {
    Query q(latest ? db_->latest_checkpoint : db_->checkpoint_by_round);
    q.Bind(study_);
    if (!latest) q.Bind(round);
    SV_ASSIGN_OR_RETURN(bool row, q.Step());
    if (!row) return std::nullopt;
    checkpoint.round = q.Int(0);
    file = q.Text(1);
    checkpoint.model_digest = q.Text(2);
  }
  const std::string path = JoinPath(state_dir_, file);
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) {
    return absl::DataLossError(
        fmt::format("checkpoint of round {} is unreadable: {}",
                    checkpoint.round, std::string(bytes.status().message())));
  }
  const std::string actual = Sha256Hex(*bytes);
  if (actual != checkpoint.model_digest) {
    return absl::DataLossError(fmt::format(
        "checkpoint file {} does not match the digest recorded for round {} "
        "in {} (recorded {}, file has {})",
        path, checkpoint.round, db_->path, checkpoint.model_digest, actual));
  }
  checkpoint.encoded_model = *std::move(bytes);
  return checkpoint;
}

absl::StatusOr<std::optional<Checkpoint>> StateStore::LoadLatest() {
  absl::MutexLock lock(&mutex_);
  return LoadCheckpointLocked(/*latest=*/true, 0);
}

absl::StatusOr<std::optional<Checkpoint>> StateStore::LoadCheckpoint(
    int64_t round) {
  absl::MutexLock lock(&mutex_);
  return LoadCheckpointLocked(/*latest=*/false, round);
}

absl::StatusOr<int64_t> StateStore::LastRound() {
  absl::MutexLock lock(&mutex_);
  Query q(db_->last_round);
  SV_RETURN_IF_ERROR(q.Bind(study_).Run());
  return q.Int(0);
}

absl::Status StateStore::SaveInitial(std::string_view encoded_model,
                                     std::string_view digest) {
  const std::string actual = Sha256Hex(encoded_model);
  if (!digest.empty() && digest != actual) {
    return absl::InvalidArgumentError(
        fmt::format("initial model digest {} does not match its bytes ({}) for "
                    "state dir {}",
                    std::string(digest), actual, state_dir_));
  }
  absl::MutexLock lock(&mutex_);
  {
    Query checkpoints(db_->count_checkpoints);
    SV_RETURN_IF_ERROR(checkpoints.Bind(study_).Run());
    Query rounds(db_->last_round);
    SV_RETURN_IF_ERROR(rounds.Bind(study_).Run());
    if (checkpoints.Int(0) > 0 || rounds.Int(0) > 0) {
      return absl::AlreadyExistsError(fmt::format(
          "state dir {} already holds a model; the initial one is saved once",
          state_dir_));
    }
  }
  const std::string file = CheckpointName(study_, 0);
  SV_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(state_dir_, file), encoded_model));
  return db_->InTransaction([&]() -> absl::Status {
    SV_RETURN_IF_ERROR(Query(db_->insert_checkpoint)
                           .Bind(study_, int64_t{0}, file, actual, encoded_model.size())
                           .Run());
    return AppendAuditLocked(
        "model.initial", RoundSubject(0),
        DumpDetails(
            {{"model_digest", actual}, {"size_bytes", encoded_model.size()}}));
  });
}

absl::Status StateStore::CheckNextRound(const RoundRecord& record) {
  if (record.round < 1) {
    return absl::InvalidArgumentError(
        fmt::format("round {} for state dir {}: rounds start at 1",
                    record.round, state_dir_));
  }
  std::set<std::string_view> seen;
  for (const std::string& p : record.participants) {
    if (!seen.insert(p).second) {
      return absl::InvalidArgumentError(
          fmt::format("round {} for state dir {} lists participant '{}' twice",
                      record.round, state_dir_, p));
    }
  }
  Query q(db_->last_round);
  SV_RETURN_IF_ERROR(q.Bind(study_).Run());
  if (record.round <= q.Int(0)) {
    return absl::FailedPreconditionError(fmt::format(
        "round {} is not after the last recorded round {} in state dir {}",
        record.round, q.Int(0), state_dir_));
  }
  return absl::OkStatus();
}

absl::Status StateStore::InsertRoundRows(const RoundRecord& r,
                                         const std::string& digest) {
  SV_RETURN_IF_ERROR(Query(db_->insert_round)
                         .Bind(study_, r.round, r.succeeded, r.failure_reason, digest,
                               r.started_unix_ms, r.finished_unix_ms,
                               r.bytes_up, r.bytes_down)
                         .Run());
  for (size_t i = 0; i < r.participants.size(); ++i) {
    SV_RETURN_IF_ERROR(
        Query(db_->insert_participant)
            .Bind(study_, r.round, static_cast<int64_t>(i), r.participants[i])
            .Run());
  }
  for (const auto& [name, value] : r.metrics) {
    SV_RETURN_IF_ERROR(
        Query(db_->insert_metric).Bind(study_, r.round, name, value).Run());
  }
  return absl::OkStatus();
}

absl::Status StateStore::PruneLocked(
    std::vector<std::string>* files_to_delete) {
  std::vector<int64_t> rounds;
  {
    Query q(db_->prunable);
    q.Bind(study_, options_.keep_last_checkpoints);
    while (true) {
      SV_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      rounds.push_back(q.Int(0));
      files_to_delete->push_back(JoinPath(state_dir_, q.Text(1)));
    }
  }
  for (int64_t round : rounds) {
    SV_RETURN_IF_ERROR(Query(db_->delete_checkpoint).Bind(study_, round).Run());
  }
  return absl::OkStatus();
}

absl::Status StateStore::CommitRound(const RoundRecord& record,
                                     std::string_view encoded_model) {
  if (!record.succeeded) {
    return absl::InvalidArgumentError(
        fmt::format("round {} for state dir {} did not succeed; record it with "
                    "RecordFailedRound",
                    record.round, state_dir_));
  }
  const std::string digest = Sha256Hex(encoded_model);
  if (!record.model_digest.empty() && record.model_digest != digest) {
    return absl::InvalidArgumentError(
        fmt::format("round {} model digest {} does not match its bytes ({}) "
                    "for state dir {}",
                    record.round, record.model_digest, digest, state_dir_));
  }
  absl::MutexLock lock(&mutex_);
  SV_RETURN_IF_ERROR(CheckNextRound(record));
  // The checkpoint first: if we crash before the commit below, the file is
  // an orphan that LoadLatest never sees and the next commit overwrites.
  const std::string file = CheckpointName(study_, record.round);
  SV_RETURN_IF_ERROR(
      WriteFileAtomically(JoinPath(state_dir_, file), encoded_model));
  std::vector<std::string> pruned;
  absl::Status status = db_->InTransaction([&]() -> absl::Status {
    SV_RETURN_IF_ERROR(InsertRoundRows(record, digest));
    SV_RETURN_IF_ERROR(
        Query(db_->insert_checkpoint)
            .Bind(study_, record.round, file, digest, encoded_model.size())
            .Run());
    SV_RETURN_IF_ERROR(AppendAuditLocked(
        "round.committed", RoundSubject(record.round),
        DumpDetails({{"model_digest", digest},
                     {"participants", record.participants}})));
    return PruneLocked(&pruned);
  });
  if (!status.ok()) {
    ::unlink(JoinPath(state_dir_, file).c_str());
    return status;
  }
  for (const std::string& path : pruned) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int error = errno;  // an orphan left behind; LoadLatest ignores it
      Logger("coordinator")
          ->warn("cannot delete pruned checkpoint {}: {}", path,
                 std::strerror(error));
    }
  }
  return absl::OkStatus();
}

absl::Status StateStore::RecordFailedRound(const RoundRecord& record) {
  if (record.succeeded) {
    return absl::InvalidArgumentError(fmt::format(
        "round {} for state dir {} succeeded; record it with CommitRound",
        record.round, state_dir_));
  }
  absl::MutexLock lock(&mutex_);
  SV_RETURN_IF_ERROR(CheckNextRound(record));
  return db_->InTransaction([&]() -> absl::Status {
    SV_RETURN_IF_ERROR(InsertRoundRows(record, record.model_digest));
    return AppendAuditLocked(
        "round.failed", RoundSubject(record.round),
        DumpDetails({{"reason", record.failure_reason},
                     {"model_digest", record.model_digest},
                     {"participants", record.participants}}));
  });
}

absl::StatusOr<std::vector<RoundRecord>> StateStore::Rounds(int64_t limit) {
  if (limit <= 0) {
    return absl::InvalidArgumentError(
        fmt::format("round limit must be positive, got {} (state dir {})",
                    limit, state_dir_));
  }
  absl::MutexLock lock(&mutex_);
  // One read transaction, so rounds and their rows are one snapshot.
  SV_RETURN_IF_ERROR(Exec(db_->handle.get(), db_->path, "BEGIN"));
  auto result = [&]() -> absl::StatusOr<std::vector<RoundRecord>> {
    std::vector<RoundRecord> records;
    {
      Query q(db_->rounds);
      q.Bind(study_, limit);
      while (true) {
        SV_ASSIGN_OR_RETURN(bool row, q.Step());
        if (!row) break;
        RoundRecord& r = records.emplace_back();
        r.round = q.Int(0);
        r.succeeded = q.Int(1) != 0;
        r.failure_reason = q.Text(2);
        r.model_digest = q.Text(3);
        r.started_unix_ms = q.Int(4);
        r.finished_unix_ms = q.Int(5);
        r.bytes_up = static_cast<uint64_t>(q.Int(6));
        r.bytes_down = static_cast<uint64_t>(q.Int(7));
      }
    }
    for (RoundRecord& r : records) {
      Query p(db_->participants_of);
      p.Bind(study_, r.round);
      while (true) {
        SV_ASSIGN_OR_RETURN(bool row, p.Step());
        if (!row) break;
        r.participants.push_back(p.Text(0));
      }
      Query m(db_->metrics_of);
      m.Bind(study_, r.round);
      while (true) {
        SV_ASSIGN_OR_RETURN(bool row, m.Step());
        if (!row) break;
        r.metrics[m.Text(0)] = m.Double(1);
      }
    }
    return records;
  }();
  (void)Exec(db_->handle.get(), db_->path, "COMMIT");
  return result;
}

absl::Status StateStore::Audit(std::string_view event, std::string_view subject,
                               const nlohmann::json& details) {
  if (event.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "audit event must not be empty (state dir {})", state_dir_));
  }
  std::string details_json;
  try {
    details_json = details.dump();
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("audit details for event '{}' are not valid JSON text: {}",
                    std::string(event), e.what()));
  }
  absl::MutexLock lock(&mutex_);
  return db_->InTransaction(
      [&]() { return AppendAuditLocked(event, subject, details_json); });
}

absl::Status StateStore::AppendAuditLocked(std::string_view event,
                                           std::string_view subject,
                                           const std::string& details_json) {
  int64_t seq = 1;
  std::string prev_hash = kZeroHash;
  {
    Query tail(db_->audit_tail);
    SV_ASSIGN_OR_RETURN(bool row, tail.Step());
    if (row) {
      seq = tail.Int(0) + 1;
      prev_hash = tail.Text(1);
    }
  }
  const int64_t now_ms = UnixMillis(options_.clock());
  const std::string hash =
      AuditHash(seq, now_ms, event, subject, details_json, prev_hash);
  SV_RETURN_IF_ERROR(
      Query(db_->insert_audit)
          .Bind(seq, now_ms, event, subject, details_json, prev_hash, hash)
          .Run());
  return Query(db_->set_audit_head).Bind(seq, hash).Run();
}

absl::StatusOr<AuditSummary> VerifyAuditLog(const std::string& state_dir) {
  const std::string path = JoinPath(state_dir, kDatabaseFile);
  struct stat info;
  if (::stat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError(fmt::format(
          "no state database in {} ({} is missing)", state_dir, path));
    }
    return ErrnoError(errno, "cannot stat", path);
  }
  SV_ASSIGN_OR_RETURN(SqliteHandle db,
                      OpenDatabase(path, SQLITE_OPEN_READONLY));
  Statement entries, head;
  SV_RETURN_IF_ERROR(
      entries.Prepare(db.get(), path,
                      "SELECT seq, unix_ms, event, subject, details, "
                      "prev_hash, hash FROM audit ORDER BY seq"));
  SV_RETURN_IF_ERROR(
      head.Prepare(db.get(), path, "SELECT seq, hash FROM audit_head"));
  SV_RETURN_IF_ERROR(
      Exec(db.get(), path, "BEGIN"));  // one snapshot for both tables
  auto bad = [&path](int64_t seq, std::string_view why) {
    return absl::DataLossError(
        fmt::format("audit log in {}: entry {} {}", path, seq, why));
  };
  AuditSummary summary;
  summary.head_hash = kZeroHash;
  {
    Query q(entries);
    while (true) {
      SV_ASSIGN_OR_RETURN(bool row, q.Step());
      if (!row) break;
      const int64_t expected = summary.entries + 1;
      const int64_t seq = q.Int(0);
      if (seq == expected + 1) return bad(expected, "is missing (deleted)");
      if (seq > expected) {
        return absl::DataLossError(fmt::format(
            "audit log in {}: entries {} to {} are missing (deleted)", path,
            expected, seq - 1));
      }
      if (seq != expected) return bad(seq, "is out of sequence (inserted)");
      const std::string prev_hash = q.Text(5);
      if (prev_hash != summary.head_hash) {
        return bad(seq,
                   fmt::format("does not chain to entry {} (entries reordered, "
                               "inserted or replaced)",
                               seq - 1));
      }
      const std::string hash =
          AuditHash(seq, q.Int(1), q.Text(2), q.Text(3), q.Text(4), prev_hash);
      if (hash != q.Text(6))
        return bad(seq, "was changed (its hash does not match its fields)");
      summary.entries = seq;
      summary.head_hash = hash;
      ++summary.events[q.Text(2)];
    }
  }
  Query h(head);
  SV_ASSIGN_OR_RETURN(bool has_head, h.Step());
  const int64_t head_seq = has_head ? h.Int(0) : 0;
  const std::string head_hash = has_head ? h.Text(1) : kZeroHash;
  if (head_seq != summary.entries || head_hash != summary.head_hash) {
    return absl::DataLossError(fmt::format(
        "audit log in {}: ends at entry {}, but its recorded head is entry {} "
        "(entries deleted from the end, or appended without the store)",
        path, summary.entries, head_seq));
  }
  return summary;
}

}  // namespace samverka::coordinator
