// Undo steps registered as a provisioning goes; unless commit() is called, they run in
// reverse order when the Rollback is destroyed. An undo that fails is reported to the
// on_error callback and the rest still run.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace hostd {

class Rollback {
public:
    using ErrorFn = std::function<void(const std::string& step, const std::string& error)>;
    explicit Rollback(ErrorFn on_error = {}) : on_error_(std::move(on_error)) {}
    Rollback(const Rollback&) = delete;
    Rollback& operator=(const Rollback&) = delete;
    ~Rollback() { run(); }

    void add(std::string step, std::function<void()> undo) { undos_.push_back({std::move(step), std::move(undo)}); }
    void commit() { undos_.clear(); }
    // Runs the registered undos now (newest first) and forgets them.
    void run() noexcept;

private:
    struct Undo {
        std::string step;
        std::function<void()> fn;
    };
    std::vector<Undo> undos_;
    ErrorFn on_error_;
};

}  // namespace hostd
