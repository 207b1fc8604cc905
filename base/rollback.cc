#include "base/rollback.h"

#include <exception>

namespace hostd {

void Rollback::run() noexcept {
    while (!undos_.empty()) {
        Undo u = std::move(undos_.back());
        undos_.pop_back();
        try {
            u.fn();
        } catch (const std::exception& e) {
            if (on_error_) on_error_(u.step, e.what());
        } catch (...) {
            if (on_error_) on_error_(u.step, "unknown error");
        }
    }
}

}  // namespace hostd
