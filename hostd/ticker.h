// A background thread that calls fn every interval until it is destroyed (RAII: the
// destructor wakes and joins it, so fn never runs after its owner is gone).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace hostd {

class Ticker {
public:
    Ticker(std::chrono::milliseconds interval, std::function<void()> fn)
        : interval_(interval), fn_(std::move(fn)), thread_([this] { run(); }) {}
    ~Ticker() {
        {
            std::lock_guard g(mu_);
            stop_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }
    Ticker(const Ticker&) = delete;
    Ticker& operator=(const Ticker&) = delete;

private:
    void run() {
        std::unique_lock lk(mu_);
        while (!cv_.wait_for(lk, interval_, [this] { return stop_; })) {
            lk.unlock();
            fn_();
            lk.lock();
        }
    }

    std::chrono::milliseconds interval_;
    std::function<void()> fn_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;  // last: starts after everything it uses exists
};

}  // namespace hostd
