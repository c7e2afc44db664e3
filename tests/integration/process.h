// tests/integration/process.h
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace samverka {

// A child process whose combined stdout and stderr the test reads line by
// line; waiting is on its output or its exit, never on the clock alone.
class Process {
 public:
  explicit Process(std::vector<std::string> argv) {
    int fds[2];
    if (pipe(fds) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], 1);
      dup2(fds[1], 2);
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> args;
      for (std::string& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(fds[1]);
    reader_ = std::thread([this, fd = fds[0]] {
      char buffer[4096];
      std::string partial;
      ssize_t n;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        output_.append(buffer, n);
        changed_.notify_all();
      }
      close(fd);
      std::lock_guard<std::mutex> lock(mutex_);
      eof_ = true;
      changed_.notify_all();
    });
  }
  ~Process() {
    Kill(SIGKILL);
    Wait(std::chrono::seconds(10));
    if (reader_.joinable()) reader_.join();
  }

  // Blocks until the output contains `text` (true) or the process closed
  // its output or `timeout` passed (false).
  bool WaitFor(const std::string& text, std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] {
      return output_.find(text) != std::string::npos || eof_;
    }) && output_.find(text) != std::string::npos;
  }
  // Blocks until `text` occurs at least `count` times (true), or the output
  // closed or `timeout` passed (false).
  bool WaitForCount(const std::string& text, int count,
                    std::chrono::seconds timeout = std::chrono::seconds(120)) {
    std::unique_lock<std::mutex> lock(mutex_);
    auto occurrences = [&] {
      int n = 0;
      for (size_t pos = output_.find(text); pos != std::string::npos; pos = output_.find(text, pos + 1)) ++n;
      return n;
    };
    changed_.wait_for(lock, timeout, [&] { return occurrences() >= count || eof_; });
    return occurrences() >= count;
  }
  // Number of times `text` occurs in the output so far.
  int Count(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    int count = 0;
    for (size_t pos = output_.find(text); pos != std::string::npos; pos = output_.find(text, pos + 1)) ++count;
    return count;
  }
  std::string output() {
    std::lock_guard<std::mutex> lock(mutex_);
    return output_;
  }
  // The output up to the end of the first line containing `text` (all of
  // it if absent): what happened by then, whatever the process did later.
  std::string OutputUntil(const std::string& text) {
    std::lock_guard<std::mutex> lock(mutex_);
    const size_t at = output_.find(text);
    if (at == std::string::npos) return output_;
    return output_.substr(0, output_.find('\n', at));
  }
  pid_t pid() const { return pid_; }
  void Kill(int signal) {
    if (pid_ > 0 && !exited_) kill(pid_, signal);
  }
  // The exit code (128 + signal if killed), or -1 if still running after
  // `timeout` (waiting on the process's end of output, then reaping it).
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(300)) {
    if (exited_) return exit_code_;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!changed_.wait_for(lock, timeout, [&] { return eof_; })) return -1;
    }
    int status = 0;
    if (pid_ > 0 && waitpid(pid_, &status, 0) == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_;
  }

 private:
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
  bool eof_ = false;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace samverka
