// watchdog.cpp — see watchdog.h.
#include "parallel/watchdog.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

namespace sk::par {
namespace {

using Clock = std::chrono::steady_clock;

struct Wait {
  const char* what = "";
  Clock::time_point since;
  double allowance = 0;
};

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::thread thread;
  bool stop = false, fired = false;
  double timeout = 0;
  std::function<void(const std::string&)> on_timeout;
  std::map<std::thread::id, Wait> waits;
  std::map<int, std::function<void()>> aborts;
  int next_abort = 0;
};

State& state() {
  static State* s = new State;  // never destroyed: the thread may outlive static destruction order
  return *s;
}

thread_local int t_depth = 0;
thread_local double t_allowance = 0;

void loop() {
  State& s = state();
  std::unique_lock<std::mutex> lk(s.mu);
  while (!s.stop) {
    s.cv.wait_for(lk, std::chrono::milliseconds(500));
    if (s.stop || s.fired) continue;
    const auto now = Clock::now();
    for (const auto& [id, w] : s.waits) {
      const double waited = std::chrono::duration<double>(now - w.since).count();
      if (waited <= s.timeout + w.allowance) continue;
      s.fired = true;
      char buf[256];
      std::snprintf(buf, sizeof buf, "%s made no progress for %.0f s (parallel.timeout_s = %g): a peer rank stopped, "
                    "died or never reached it; ending the job", w.what, waited, s.timeout);
      auto fn = s.on_timeout;
      lk.unlock();
      if (fn) fn(buf);
      lk.lock();
      break;
    }
  }
}

}  // namespace

void Watchdog::start(double timeout_s, std::function<void(const std::string&)> on_timeout) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.timeout = timeout_s;
  s.on_timeout = std::move(on_timeout);
  s.fired = false;
  if (!s.thread.joinable()) {
    s.stop = false;
    s.thread = std::thread(loop);
  }
}

void Watchdog::stop() {
  State& s = state();
  {
    std::lock_guard<std::mutex> lk(s.mu);
    s.stop = true;
  }
  s.cv.notify_all();
  if (s.thread.joinable()) s.thread.join();
}

bool Watchdog::running() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  return s.thread.joinable() && !s.stop;
}

double Watchdog::timeout() {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  return s.timeout;
}

int Watchdog::on_abort(std::function<void()> fn) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.aborts[s.next_abort] = std::move(fn);
  return s.next_abort++;
}

void Watchdog::remove_abort(int id) {
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.aborts.erase(id);
}

void Watchdog::run_aborts() {
  State& s = state();
  std::map<int, std::function<void()>> fns;
  {
    std::lock_guard<std::mutex> lk(s.mu);
    fns.swap(s.aborts);
  }
  for (auto& [id, fn] : fns) fn();
}

Watchdog::Scope::Scope(const char* what) {
  if (t_depth++ > 0) return;
  outer_ = true;
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.waits[std::this_thread::get_id()] = Wait{what, Clock::now(), t_allowance};
}

Watchdog::Scope::~Scope() {
  --t_depth;
  if (!outer_) return;
  State& s = state();
  std::lock_guard<std::mutex> lk(s.mu);
  s.waits.erase(std::this_thread::get_id());
}

Watchdog::Allowance::Allowance(double seconds) : seconds_(seconds) { t_allowance += seconds; }
Watchdog::Allowance::~Allowance() { t_allowance -= seconds_; }

}  // namespace sk::par
