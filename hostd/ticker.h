// A background thread that calls fn every interval until it is destroyed (RAII: the
// destructor wakes and joins it, so fn never runs after its owner is gone).
#pragma once

#include <pthread.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace hostd {

class Ticker {
public:
    Ticker(std::chrono::milliseconds interval, std::function<void()> fn)
        : next_([interval, fn = std::move(fn)] {
              fn();
              return interval;
          }),
          first_(interval),
          thread_([this] { run(); }) {}
    // Paced: fn runs at once, then again after the wait it returns, and so on.
    explicit Ticker(std::function<std::chrono::milliseconds()> fn)
        : next_(std::move(fn)), first_(0), thread_([this] { run(); }) {}
    ~Ticker() {
        {
            std::lock_guard g(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    // Names the thread (at most 15 characters; ps -T, /proc/<pid>/task/<tid>/comm), so what each
    // loop costs can be read from outside (bench/run ONLY=flat splits hostd's CPU by thread).
    void name(const char* n) { ::pthread_setname_np(thread_.native_handle(), n); }
    Ticker(const Ticker&) = delete;
    Ticker& operator=(const Ticker&) = delete;

private:
    void run() {
        std::unique_lock lk(mu_);
        std::chrono::milliseconds wait = first_;
        while (!cv_.wait_for(lk, wait, [this] { return stop_; })) {
            lk.unlock();
            wait = next_();
            lk.lock();
        }
    }

    std::function<std::chrono::milliseconds()> next_;
    std::chrono::milliseconds first_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;  // last: starts after everything it uses exists
};

}  // namespace hostd
