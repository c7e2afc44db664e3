#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace samverka {
namespace {

// Closes a file descriptor once; -1 means closed.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Close(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

absl::Status ErrnoError(int error, const std::string& what) {
  const std::string message = absl::StrCat(what, ": ", std::strerror(error));
  if (error == ENOENT) return absl::NotFoundError(message);
  if (error == EACCES || error == EPERM) return absl::PermissionDeniedError(message);
  return absl::InternalError(message);
}

// Writes all of `data` to fd 2 (the child's log lines into ours).
void WriteToStderr(std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(STDERR_FILENO, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

// Copies the child's stderr to ours in whole lines, remembering the last
// non-empty one for the error message.
class StderrRelay {
 public:
  void Append(std::string_view chunk) {
    pending_.append(chunk.data(), chunk.size());
    const size_t end = pending_.rfind('\n');
    if (end == std::string::npos) return;
    Emit(std::string_view(pending_).substr(0, end + 1));
    pending_.erase(0, end + 1);
  }
  void Finish() {
    if (!pending_.empty()) Emit(pending_ + "\n");
    pending_.clear();
  }
  const std::string& last_line() const { return last_line_; }

 private:
  void Emit(std::string_view lines) {
    WriteToStderr(lines);
    std::string_view rest = lines.substr(0, lines.size() - 1);  // drop the final '\n'
    while (!rest.empty()) {
      const size_t start = rest.rfind('\n');
      std::string_view line = start == std::string_view::npos ? rest : rest.substr(start + 1);
      if (line.find_first_not_of(" \t\r") != std::string_view::npos) {
        last_line_ = std::string(line);
        return;
      }
      rest = start == std::string_view::npos ? std::string_view() : rest.substr(0, start);
    }
  }

  std::string pending_;
  std::string last_line_;
};

// The environment for the child: ours, with `options.environment` set and
// `options.environment_defaults` filled in where we have no value.
std::vector<std::string> ChildEnvironment(const SubprocessOptions& options) {
  std::set<std::string> replaced, present;
  for (const auto& [name, value] : options.environment) replaced.insert(name);
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    std::string name(entry.substr(0, entry.find('=')));
    if (!replaced.contains(name)) out.emplace_back(entry);
    present.insert(std::move(name));
  }
  for (const auto& [name, value] : options.environment) out.push_back(absl::StrCat(name, "=", value));
  for (const auto& [name, value] : options.environment_defaults) {
    if (!present.contains(name) && !replaced.contains(name)) out.push_back(absl::StrCat(name, "=", value));
  }
  return out;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Starts the child with `stdin_fd`, `stdout_fd` and `stderr_fd` as its fds
// 0, 1 and 2, default signal dispositions, an empty signal mask, in a new
// process group.
absl::StatusOr<pid_t> Spawn(const SubprocessOptions& options, int stdin_fd, int stdout_fd,
                            int stderr_fd) {
  std::vector<std::string> argv = options.argv;
  std::vector<std::string> environment = ChildEnvironment(options);
  std::vector<char*> c_argv = CStrings(argv);
  std::vector<char*> c_environment = CStrings(environment);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, stderr_fd, STDERR_FILENO);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int signal : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD}) sigaddset(&defaults, signal);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  // Its own process group: a terminal's Ctrl-C reaches this process, which
  // decides how to stop, not a child in the middle of its work.
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  const int error = posix_spawn(&pid, argv[0].c_str(), &actions, &attributes, c_argv.data(),
                                c_environment.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (error != 0) return ErrnoError(error, absl::StrCat("cannot start ", argv[0]));
  return pid;
}

}  // namespace

absl::StatusOr<std::string> RunSubprocess(const SubprocessOptions& options) {
  if (options.argv.empty() || options.argv[0].empty()) {
    return absl::InvalidArgumentError("RunSubprocess needs the program's path in argv[0]");
  }
  const std::string& program = options.argv[0];
  // stdin is a socket so that a child that stops reading gives us EPIPE
  // from send(MSG_NOSIGNAL), never a SIGPIPE that would end this process.
  int in[2], out[2], err[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0) {
    return ErrnoError(errno, "socketpair for a child's stdin");
  }
  Fd child_in(in[0]), to_child(in[1]);
  if (pipe2(out, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe for a child's stdout");
  Fd from_child(out[0]), child_out(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) return ErrnoError(errno, "pipe for a child's stderr");
  Fd child_log(err[0]), child_err(err[1]);

  absl::StatusOr<pid_t> pid = Spawn(options, child_in.get(), child_out.get(), child_err.get());
  child_in.Close();
  child_out.Close();
  child_err.Close();
  if (!pid.ok()) return pid.status();

  std::string_view input = options.stdin_data;
  if (input.empty()) to_child.Close();
  if (to_child.open()) fcntl(to_child.get(), F_SETFL, fcntl(to_child.get(), F_GETFL) | O_NONBLOCK);
  std::string output;
  StderrRelay relay;
  char buffer[1 << 16];
  const absl::Time deadline = absl::Now() + options.timeout;  // infinite stays infinite
  while (from_child.open() || child_log.open()) {
    pollfd fds[3];
    int n = 0;
    int in_index = -1, out_index = -1, err_index = -1;
    if (to_child.open()) fds[in_index = n++] = {to_child.get(), POLLOUT, 0};
    if (from_child.open()) fds[out_index = n++] = {from_child.get(), POLLIN, 0};
    if (child_log.open()) fds[err_index = n++] = {child_log.get(), POLLIN, 0};
    int wait_ms = -1;
    if (deadline != absl::InfiniteFuture()) {
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        kill(-*pid, SIGKILL);  // its process group: the child and anything it started
        while (waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        relay.Finish();
        return absl::DeadlineExceededError(
            absl::StrCat(program, " did not finish within ", absl::FormatDuration(options.timeout),
                         " and was stopped"));
      }
      wait_ms = static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 1 << 30));
    }
    const int ready = poll(fds, n, wait_ms);
    if (ready == 0) continue;  // the deadline check above ends the run
    if (ready < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      kill(*pid, SIGKILL);
      waitpid(*pid, nullptr, 0);
      return ErrnoError(error, absl::StrCat("poll on the pipes of ", program));
    }
    if (in_index >= 0 && fds[in_index].revents != 0) {
      const ssize_t sent = send(to_child.get(), input.data(), std::min<size_t>(input.size(), sizeof(buffer)),
                                MSG_NOSIGNAL);
      if (sent > 0) input.remove_prefix(static_cast<size_t>(sent));
      // Done, or the child closed its stdin (its exit status says why).
      if (input.empty() || (sent < 0 && errno != EAGAIN && errno != EINTR)) to_child.Close();
    }
    if (out_index >= 0 && fds[out_index].revents != 0) {
      const ssize_t got = read(from_child.get(), buffer, sizeof(buffer));
      if (got > 0) {
        output.append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        from_child.Close();
      }
    }
    if (err_index >= 0 && fds[err_index].revents != 0) {
      const ssize_t got = read(child_log.get(), buffer, sizeof(buffer));
      if (got > 0) {
        relay.Append(std::string_view(buffer, static_cast<size_t>(got)));
      } else if (got == 0 || errno != EINTR) {
        child_log.Close();
      }
    }
  }
  to_child.Close();
  relay.Finish();
  int status = 0;
  while (waitpid(*pid, &status, 0) < 0) {
    if (errno != EINTR) return ErrnoError(errno, absl::StrCat("waiting for ", program));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = sigabbrev_np(signal);
    return absl::InternalError(absl::StrCat(program, " was killed by signal ", signal,
                                            name != nullptr ? absl::StrCat(" (SIG", name, ")") : ""));
  }
  return absl::InternalError(absl::StrCat(
      program, " exited with code ", WEXITSTATUS(status),
      relay.last_line().empty() ? " (no message on stderr)" : absl::StrCat(": ", relay.last_line())));
}

}  // namespace samverka
