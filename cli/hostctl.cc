// hostctl: parse, call hostd, print, exit with a code that mirrors the result.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <mutex>
#include <thread>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>

#include "base/size.h"
#include "clidoc/clidoc.h"
#include "cli/client.h"
#include "cli/present.h"
#include "wire/wire.h"

using hostd::wire::json;

namespace {

// Exit codes (also in --help and the README).
enum Exit {
    kOk = 0,
    kFailed = 1,      // hostd tried and failed (5xx)
    kInvalid = 2,     // bad input (400, or bad flags)
    kNotFound = 3,    // 404
    kConflict = 4,    // 409: exists, busy, or refused as unsafe
    kForbidden = 5,   // 403
    kUnreachable = 6  // hostd not running / socket missing
};

const char* kExitHelp =
    "Exit codes: 0 ok, 1 hostd failed, 2 invalid input, 3 not found, 4 conflict, 5 permission denied, "
    "6 hostd unreachable.";

struct Ctx {
    std::string socket = "/run/hostd/hostd.sock";
    bool json_out = false;
};

int exit_for(long status) {
    if (status >= 200 && status < 300) return kOk;
    if (status == 400 || status == 405) return kInvalid;
    if (status == 404) return kNotFound;
    if (status == 409) return kConflict;
    if (status == 403) return kForbidden;
    return kFailed;
}

// A verb's reply: on success the value (printed by the caller); else one line on stderr (and
// hostd's error body on stdout with --json) and the exit code in `code`.
template <class T>
bool finish(const Ctx& ctx, const hostd::Reply<T>& r, int& code) {
    if (r.status == 0) {
        std::cerr << "hostctl: " << r.transport_error << (r.denied ? "\n" : " (is hostd.socket enabled?)\n");
        code = r.denied ? kForbidden : kUnreachable;
        return false;
    }
    code = exit_for(r.status);
    if (code == kOk && r.ok()) return true;
    if (ctx.json_out && !r.body.is_null()) std::cout << r.body.dump(2) << "\n";
    std::cerr << "hostctl: " << (r.error ? r.error->what() : "HTTP " + std::to_string(r.status)) << "\n";
    if (code == kOk) code = kFailed;
    return false;
}

void print_json(const json& j) { std::cout << j.dump(2) << "\n"; }

// A size typed on the command line, checked as hostd checks it (the message quotes it).
bool size_arg(const std::string& text, const char* field, std::optional<uint64_t>& out, int& code) {
    if (text.empty()) return true;
    try {
        out = hostd::wire::parse_size_value(json(text), field);
        return true;
    } catch (const hostd::Error& e) {
        std::cerr << "hostctl: " << e.what() << "\n";
        code = kInvalid;
        return false;
    }
}

// create's progress on stderr: plain "  step  N ms" lines when stderr is not a terminal; on a
// terminal the same lines plus a spinner line naming the step under way (hostd says when each
// starts), redrawn every 100 ms.
class ProgressView {
public:
    ProgressView(std::string name, bool tty) : name_(std::move(name)), tty_(tty) {
        if (tty_) spinner_ = std::thread([this] { spin(); });
    }
    ~ProgressView() { finish(); }
    void step(const std::string& step, long ms) {
        std::lock_guard g(mu_);
        since_ = std::chrono::steady_clock::now();
        if (ms < 0) {  // hostd starts this step
            running_ = step;
            return;
        }
        if (tty_) std::cerr << "\r\033[K";
        std::cerr << hostd::step_line(step, ms) << "\n" << std::flush;
        running_.clear();
    }
    void finish() {
        {
            std::lock_guard g(mu_);
            if (stop_) return;
            stop_ = true;
        }
        cv_.notify_all();
        if (spinner_.joinable()) spinner_.join();
        if (tty_) std::cerr << "\r\033[K" << std::flush;
    }

private:
    void spin() {
        std::unique_lock l(mu_);
        for (size_t frame = 0; !stop_; frame++) {
            long ms = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - since_).count());
            std::cerr << "\r\033[K" << hostd::spinner_line(frame, name_ + ": " + (running_.empty() ? "waiting" : running_), ms)
                      << std::flush;
            cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stop_; });
        }
    }
    std::string name_, running_;
    bool tty_;
    bool stop_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
    std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
    std::thread spinner_;
};

// --set name=value (repeatable) → {"name": "value"}; PostgreSQL parses the values.
bool settings_from(const std::vector<std::string>& pairs, std::optional<hostd::Settings>& out, int& code) {
    if (pairs.empty()) return true;
    out.emplace();
    for (auto& p : pairs) {
        auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::cerr << "hostctl: --set takes NAME=VALUE, not '" << p << "'\n";
            code = kInvalid;
            return false;
        }
        (*out)[p.substr(0, eq)] = p.substr(eq + 1);
    }
    return true;
}

// Replaces hostctl with a tool (argv, no shell); returns only if it cannot be run.
int run_tool(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::cerr << "hostctl: cannot run " << args[0] << ": " << std::strerror(errno) << "\n";
    return kFailed;
}

// A tenant that has a connection URL (with its password); nullopt with code set if it has none.
std::optional<hostd::TenantView> tenant_with_url(const Ctx& ctx, const std::string& name, int& code) {
    auto r = hostd::Client(ctx.socket).get(name);
    if (!finish(ctx, r, code)) return std::nullopt;
    if (r.value->url.empty()) {
        std::cerr << "hostctl: tenant '" << name << "' is " << to_string(r.value->state) << ", it has no URL\n";
        code = kConflict;
        return std::nullopt;
    }
    return *r.value;
}
std::optional<std::string> tenant_url(const Ctx& ctx, const std::string& name, int& code) {
    auto t = tenant_with_url(ctx, name, code);
    return t ? std::optional(t->url) : std::nullopt;
}

void print_table(const std::vector<std::vector<std::string>>& rows) { std::cout << hostd::render_table(rows); }

// An operation that takes a serving tenant offline says so before it happens: on a terminal the
// operator answers y; elsewhere (a script, a pipe) --yes is needed, and without it nothing is
// done (exit 2).
bool confirm_offline(const std::string& what, bool yes, int& code) {
    if (yes) return true;
    if (!::isatty(0)) {
        std::cerr << "hostctl: " << what << "\nhostctl: add --yes to confirm when not on a terminal; nothing was done\n";
        code = kInvalid;
        return false;
    }
    std::cerr << what << "\nProceed? [y/N] " << std::flush;
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
        std::cerr << "hostctl: not confirmed; nothing was done\n";
        code = kInvalid;
        return false;
    }
    return true;
}

// The one-line answer of a lifecycle verb: what the tenant does now, and why when it is not running.
void print_live(const hostd::TenantView& t) {
    std::cout << "Tenant '" << t.name << "' is " << hostd::state_word(t)
              << (t.live.reason.empty() ? "" : " (" + t.live.reason + ")") << ".\n";
}

}  // namespace

int main(int argc, char** argv) {
    Ctx ctx;
    if (const char* s = std::getenv("HOSTD_SOCKET")) ctx.socket = s;
    CLI::App app{"hostctl: manage hostd's PostgreSQL tenants", "hostctl"};
    app.footer(kExitHelp);
    app.require_subcommand(1);
    // Options of hostctl itself (--json, --socket) after the subcommand too, as --help shows them.
    app.fallthrough();
    app.add_option("--socket", ctx.socket, "hostd's API socket (env HOSTD_SOCKET)")->capture_default_str();
    app.add_flag("--json", ctx.json_out, "Print JSON instead of text");
    app.set_version_flag("--version", "hostctl " HOSTD_VERSION);
    int code = kOk;

    // create
    auto* create = app.add_subcommand("create", "Create a tenant: disk, cluster, unit, route; prints its URL");
    create->footer("Example: hostctl create acme --disk-size 2G --memory 512M --cpu 0.5");
    std::string name, disk, memory, device, backend;
    double cpu = 0;
    uint64_t tasks = 0;
    bool reuse = false;
    create->add_option("name", name, "Tenant name (a-z, 0-9, '-'; at most 30)")->required();
    create->add_option("--disk-size", disk, "Disk size, e.g. 2G (default from hostd.toml)");
    create->add_option("--memory", memory, "Memory limit, e.g. 512M");
    create->add_option("--cpu", cpu, "CPU quota in CPUs, e.g. 0.5");
    create->add_option("--tasks", tasks, "Most processes/threads");
    create->add_option("--device", device, "Block device for the device backend");
    create->add_option("--backend", backend, "loop or device")->check(CLI::IsMember({"loop", "device"}));
    std::string filesystem;
    bool force = false;
    create->add_option("--filesystem", filesystem, "ext4 (default) or xfs")->check(CLI::IsMember({"ext4", "xfs"}));
    create->add_flag("--force", force, "Device backend: format over an existing signature (never over a mounted, "
                                       "partitioned, held or claimed device); the reply says what was destroyed");
    create->add_flag("--reuse", reuse, "Bring back a tenant deleted without --purge, with its data, limits and settings; "
                                       "--memory, --cpu, --tasks and --set change them, --disk-size, --filesystem, "
                                       "--backend, --device and --force are refused");
    std::string from, from_time;
    create->add_option("--from", from, "Branch: the data of this tenant (from its backups and archived WAL)");
    create->add_option("--time", from_time, "With --from: latest (default), a backup label, or an RFC 3339 time "
                                            "such as 2026-11-30T04:56:04Z");
    std::vector<std::string> create_settings;
    create->add_option("--set", create_settings, "PostgreSQL setting NAME=VALUE (repeatable), e.g. --set work_mem=64MB; with --reuse, "
                                             "set over the kept overrides");
    std::vector<std::string> create_extensions;
    create->add_option("--extension", create_extensions,
                       "Enable an extension from hostd.toml's extensions.allowed (repeatable, or comma-separated), "
                       "e.g. pg_stat_statements; then CREATE EXTENSION as the tenant")
        ->delimiter(',');
    // HA (#17): the replicas' hosts; this host makes the first member and coordinates.
    std::vector<std::string> replicas;
    bool synchronous = false, synchronous_strict = false;
    create->add_option("--replicas", replicas,
                       "HA tenant: the hosts of its replicas ([ha] hosts names; 1 or 2, comma-separated), e.g. db2,db3; "
                       "this host runs the first member")
        ->delimiter(',');
    auto* sync_flag = create->add_flag("--synchronous", synchronous,
                                       "With --replicas: Patroni's synchronous mode (a commit waits for one replica; "
                                       "a failover loses no acknowledged commit)")
                          ->needs("--replicas");
    create->add_flag("--synchronous-strict", synchronous_strict,
                     "With --synchronous: no writes while no replica is synchronous (durability over availability)")
        ->needs(sync_flag);
    create->callback([&] {
        hostd::CreateRequest req;
        if (!size_arg(disk, "disk_size", req.disk_size, code) || !size_arg(memory, "memory", req.memory, code)) return;
        if (create->count("--cpu")) req.cpu = cpu;
        if (create->count("--tasks")) req.tasks = tasks;
        if (!device.empty()) req.device = device;
        if (!backend.empty()) req.backend = backend;
        if (!filesystem.empty()) req.filesystem = filesystem;
        req.reuse = reuse;
        req.force = force;
        if (!from_time.empty() && from.empty()) {
            std::cerr << "hostctl: --time needs --from (the tenant to branch from)\n";
            code = kInvalid;
            return;
        }
        if (!from.empty()) req.from = hostd::CreateRequest::From{.tenant = from, .target = from_time.empty() ? "latest" : from_time};
        if (!settings_from(create_settings, req.settings, code)) return;
        if (!create_extensions.empty()) req.extensions = create_extensions;
        if (!replicas.empty()) req.ha = hostd::HaRequest{.replicas = replicas, .synchronous = synchronous, .strict = synchronous_strict};
        hostd::Reply<hostd::Created> r;
        {
            // Each step as hostd finishes it (PUT ?progress=1 streams them); nothing extra with --json.
            std::unique_ptr<ProgressView> view;
            if (!ctx.json_out) view = std::make_unique<ProgressView>(name, ::isatty(2) == 1);
            r = hostd::Client(ctx.socket).create(name, req, [&](std::string_view step, long ms) {
                if (view) view->step(std::string(step), ms);
            });
            if (view) view->finish();
        }
        if (!finish(ctx, r, code)) return;
        const hostd::Created& c = *r.value;
        if (ctx.json_out) {
            print_json(hostd::wire::render(c));
            return;
        }
        std::cout << "Tenant '" << c.tenant.name << "' is ready in " << c.ms << " ms.\n"
                  << "URL:      " << c.tenant.url << "\nPassword: " << c.tenant.password.value_or("") << "\n";
        if (!c.tenant.read_only_url.empty()) std::cout << "Replicas: " << c.tenant.read_only_url << "\n";
        if (!c.destroyed.empty()) std::cout << "Destroyed (--force): " << c.destroyed << "\n";
    });

    // resize
    auto* resize = app.add_subcommand("resize", "Grow a tenant's disk and filesystem (online where the kernel allows)");
    resize->footer("Example: hostctl resize acme --size 4G\n"
                   "Loop backend: hostd grows the image. Device backend: grow the volume first, then run this.\n"
                   "Shrinking is refused. Where the filesystem can only grow unmounted (ext4 without CAP_SYS_RESOURCE),\n"
                   "PostgreSQL stops for a few seconds: hostctl says so and asks first (--yes when not on a terminal).");
    std::string new_size;
    bool resize_yes = false;
    resize->add_option("name", name, "Tenant name")->required();
    resize->add_option("--size", new_size, "New disk size, e.g. 4G")->required();
    resize->add_flag("-y,--yes", resize_yes, "Do not ask before a resize that must stop PostgreSQL (ext4 that cannot grow mounted)");
    resize->callback([&] {
        std::optional<uint64_t> size;
        if (!size_arg(new_size, "size", size, code)) return;
        const hostd::Client client(ctx.socket);
        // Asked first whether it can grow online; hostd refuses (field allow_offline), changing
        // nothing, when it would have to stop PostgreSQL: then the operator confirms.
        auto r = client.resize(name, {.size = size.value_or(0), .allow_offline = resize_yes});
        if (!r.ok() && r.error && r.error->field() == "allow_offline") {
            if (!confirm_offline(r.error->what(), false, code)) return;
            r = client.resize(name, {.size = size.value_or(0), .allow_offline = true});
        }
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render(*r.value));
            return;
        }
        std::cout << "Tenant '" << name << "' now has a " << hostd::format_size(r.value->tenant.spec.disk_size)
                  << " disk (" << (r.value->online ? "grown online" : "grown offline, PostgreSQL restarted") << ", "
                  << r.value->ms << " ms).\n";
    });

    // backup, backups
    auto* backup = app.add_subcommand("backup", "Back up a tenant now (pgBackRest; hostd.toml's backup.repo)");
    backup->footer("Example: hostctl backup acme --type full\n"
                   "incr (the default) backs up what changed since the last backup; the first one is full.");
    std::string backup_type = "incr";
    backup->add_option("name", name, "Tenant name")->required();
    backup->add_option("--type", backup_type, "full, diff or incr")->check(CLI::IsMember({"full", "diff", "incr"}));
    backup->callback([&] {
        auto r = hostd::Client(ctx.socket).backup(name, backup_type);
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render(*r.value));
            return;
        }
        const auto& b = r.value->backup;
        std::cout << "Backup " << b.label << " (" << b.type << ") of '" << name << "' done in " << r.value->ms << " ms: "
                  << hostd::format_size(b.size) << ", " << hostd::format_size(b.repo_delta) << " added to the repository.\n";
    });
    auto* backups = app.add_subcommand("backups", "List a tenant's backups and the window it can be restored to; without a "
                                                  "name, the deleted tenants whose backups are kept");
    backups->footer("Example: hostctl backups acme\n"
                    "Branch from them: hostctl create acme-pr42 --from acme --time 2026-11-30T04:56:04Z\n"
                    "A tenant deleted with --purge keeps its backups for backup.deleted_retention days (hostd.toml);\n"
                    "hostctl backups lists those tenants, hostctl delete NAME --purge --purge-backups removes them.");
    backups->add_option("name", name, "Tenant name (a deleted one's too)");
    backups->callback([&] {
        if (name.empty()) {
            auto d = hostd::Client(ctx.socket).deleted();
            if (!finish(ctx, d, code)) return;
            if (ctx.json_out) {
                print_json(hostd::wire::render(*d.value));
                return;
            }
            if (d.value->empty()) {
                std::cout << "No deleted tenant's backups are kept.\n";
                return;
            }
            std::cout << "Deleted tenants whose backups are kept (hostctl create NEW --from NAME branches from them):\n";
            print_table(hostd::kept_rows(*d.value));
            return;
        }
        auto r = hostd::Client(ctx.socket).backups(name);
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render(*r.value));
            return;
        }
        const auto& b = *r.value;
        if (b.deleted == "purged")
            std::cout << "Tenant '" << name << "' is deleted (its disk destroyed at " << b.deleted_at << "); its backups are kept "
                      << (b.kept_until.empty() ? "until purged" : "until " + b.kept_until) << ".\n\n";
        else if (b.deleted == "detached")
            std::cout << "Tenant '" << name << "' is deleted (its data kept, for create --reuse); its backups stay with it.\n\n";
        print_table(hostd::backup_rows(b));
        std::cout << "\nRecoverable: " << (b.recoverable_from.empty() ? "nothing yet (no backup)" : "from " + b.recoverable_from +
                                              " to the newest archived WAL (" + b.wal_max + ")")
                  << (b.running ? "; a backup is running" : "") << "\n";
        if (const std::string failure = hostd::backup_failure_line(b); !failure.empty()) std::cout << failure << "\n";
    });

    // restore
    auto* restore = app.add_subcommand("restore", "Bring back a tenant whose disk was destroyed, from its backups "
                                                  "(same name, port, password, URL) onto a new disk");
    restore->footer("Example: hostctl restore acme\n"
                    "Only when its data is really gone: no filesystem of the tenant's mounted or on any disk, its unit\n"
                    "not running, and (loop) no image file in its place or (device) its device blank. A tenant that is\n"
                    "only stopped or unmounted is refused: hostctl start or hostctl reconcile brings it back. It gets\n"
                    "every transaction whose WAL was archived (at most backup.archive_timeout seconds of work are lost).");
    std::string restore_time;
    bool restore_latest = false;
    restore->add_option("name", name, "Tenant name")->required();
    auto* restore_time_opt = restore->add_option("--time", restore_time, "Restore to this RFC 3339 time (e.g. "
                                                                         "2026-11-30T04:56:04Z) or backup label instead");
    restore->add_flag("--latest", restore_latest, "Every archived transaction (the default)")->excludes(restore_time_opt);
    restore->callback([&] {
        const hostd::RestoreRequest req{.time = restore_time.empty() ? "latest" : restore_time};
        hostd::Reply<hostd::Restored> r;
        {
            std::unique_ptr<ProgressView> view;
            if (!ctx.json_out) view = std::make_unique<ProgressView>(name, ::isatty(2) == 1);
            r = hostd::Client(ctx.socket).restore(name, req, [&](std::string_view step, long ms) {
                if (view) view->step(std::string(step), ms);
            });
            if (view) view->finish();
        }
        if (!finish(ctx, r, code)) return;
        const hostd::Restored& v = *r.value;
        if (ctx.json_out) {
            print_json(hostd::wire::render(v));
            return;
        }
        std::cout << "Tenant '" << v.tenant.name << "' is restored (" << v.target
                  << (v.wal_max.empty() ? "" : ", archived WAL up to " + v.wal_max) << ") in " << v.ms << " ms"
                  << (v.tenant.stopped ? "; it stays stopped (hostctl start " + v.tenant.name + ")" : "") << ".\n"
                  << "URL:      " << v.tenant.url << "\n";
    });

    // list
    auto* list = app.add_subcommand("list", "List tenants: what each does now (running, stopped, down...), port, disk used/total, "
                                            "memory used/limit, CPU quota (time used), URL");
    list->footer("Example: hostctl list --json");
    bool names_only = false;
    list->add_flag("--names", names_only, "Only the names, one a line (used by shell completion)");
    list->callback([&] {
        auto r = hostd::Client(ctx.socket).list(/*live=*/!names_only);
        if (!finish(ctx, r, code)) return;
        if (names_only) {
            for (auto& t : *r.value) std::cout << t.name << "\n";
            return;
        }
        if (ctx.json_out) print_json(hostd::wire::render(*r.value));
        else print_table(hostd::tenant_rows(*r.value));
    });

    // show
    auto* show = app.add_subcommand("show", "Show one tenant, with its password and what it does now (down: why), from "
                                            "its unit and a check of PostgreSQL; an HA tenant's members in a table "
                                            "(HOST ROLE STATE LAG TL SYNC)");
    show->footer("Example: hostctl show acme");
    show->add_option("name", name, "Tenant name")->required();
    show->callback([&] {
        auto r = hostd::Client(ctx.socket).get(name);
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render_one(*r.value));
            return;
        }
        auto rows = hostd::tenant_details(*r.value);
        if (r.value->backup)
            for (auto& row : hostd::backup_health_rows(*r.value->backup, std::time(nullptr))) rows.push_back(std::move(row));
        print_table(rows);
        if (!r.value->members.empty()) {
            std::cout << "\n";
            print_table(hostd::member_rows(r.value->members));
        }
    });

    // url
    auto* url = app.add_subcommand("url", "Print the tenant's connection URL (with its password)");
    url->footer("Example: psql \"$(hostctl url acme)\"");
    url->add_option("name", name, "Tenant name")->required();
    url->callback([&] {
        auto u = tenant_url(ctx, name, code);
        if (!u) return;
        if (ctx.json_out) std::cout << json{{"url", *u}}.dump(2) << "\n";
        else std::cout << *u << "\n";
    });

    // set
    auto* set = app.add_subcommand("set", "Change a tenant's limits and PostgreSQL settings live (no restart where "
                                          "systemd and PostgreSQL can apply them)");
    set->footer("Example: hostctl set acme --memory 1G --cpu 2 --set work_mem=64MB --unset statement_timeout\n"
                "--set changes the settings it names and keeps the tenant's other overrides; --reset-settings drops\n"
                "them all first. Settings PostgreSQL reads only at start are listed (and in hostctl show) until the\n"
                "tenant restarts.");
    std::string set_memory;
    double set_cpu = 0;
    uint64_t set_tasks = 0, set_io = 0;
    set->add_option("name", name, "Tenant name")->required();
    set->add_option("--memory", set_memory, "Memory limit, e.g. 1G");
    set->add_option("--cpu", set_cpu, "CPU quota in CPUs, e.g. 2");
    set->add_option("--tasks", set_tasks, "Most processes/threads");
    set->add_option("--io-weight", set_io, "IO weight 1..10000 (default 100)");
    std::vector<std::string> set_settings;
    set->add_option("--set", set_settings, "PostgreSQL setting NAME=VALUE (repeatable); other overrides are kept");
    std::vector<std::string> unset_settings;
    set->add_option("--unset", unset_settings, "Drop the override of setting NAME (repeatable): PostgreSQL's or hostd's value again");
    bool reset_settings = false;
    set->add_flag("--reset-settings", reset_settings, "Drop every setting override (before any --set)");
    std::string set_extensions;
    set->add_option("--extensions", set_extensions,
                    "The tenant's extensions, comma-separated, replacing its list ('' for none); those needing a "
                    "preloaded library (pg_stat_statements) take effect at the next restart");
    set->callback([&] {
        hostd::LimitsUpdate u;
        if (!size_arg(set_memory, "memory", u.memory, code)) return;
        if (set->count("--cpu")) u.cpu = set_cpu;
        if (set->count("--tasks")) u.tasks = set_tasks;
        if (set->count("--io-weight")) u.io_weight = set_io;
        std::optional<hostd::Settings> to_set;
        if (!settings_from(set_settings, to_set, code)) return;
        u.settings_edit = {.reset = reset_settings, .unset = unset_settings, .set = to_set.value_or(hostd::Settings{})};
        if (set->count("--extensions")) {
            u.extensions.emplace();
            std::stringstream in(set_extensions);
            for (std::string e; std::getline(in, e, ',');)
                if (!e.empty()) u.extensions->push_back(e);
        }
        if (u.empty()) {
            std::cerr << "hostctl: nothing to change; give --memory, --cpu, --tasks, --io-weight, --set, --unset, "
                         "--reset-settings or --extensions\n";
            code = kInvalid;
            return;
        }
        auto r = hostd::Client(ctx.socket).set_limits(name, u);
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render(*r.value));
            return;
        }
        const auto& t = r.value->tenant;
        std::cout << "Tenant '" << name << "' now has memory " << hostd::format_size(t.spec.memory) << ", cpu "
                  << t.spec.cpu << ", tasks " << t.spec.tasks << ".\n";
        std::cout << "Setting overrides: " << hostd::settings_line(t.spec.settings) << "\n";
        if (!r.value->pending_restart.empty())
            std::cout << "PostgreSQL applies " << json(r.value->pending_restart).dump() << " at its next restart.\n";
    });

    // passwd
    auto* passwd = app.add_subcommand("passwd", "Give the tenant's admin user a new password (generated, or read from stdin)");
    passwd->footer("Example: hostctl passwd acme\n"
                   "Example: hostctl passwd acme --stdin < new-password.txt\n"
                   "The old password stops working at once; the URL (hostctl url) carries the new one. hostd's own\n"
                   "checks and metrics use a role of their own and go on. The new password reaches PostgreSQL only as\n"
                   "its SCRAM verifier.");
    bool from_stdin = false;
    passwd->add_option("name", name, "Tenant name")->required();
    passwd->add_flag("--stdin", from_stdin, "Read the new password from the first line of stdin (8 to 256 bytes, no "
                                            "control characters) instead of generating one");
    passwd->callback([&] {
        hostd::PasswordRequest req;
        if (from_stdin) {
            std::string line;
            if (!std::getline(std::cin, line) && line.empty()) {
                std::cerr << "hostctl: --stdin: no password on stdin\n";
                code = kInvalid;
                return;
            }
            if (!line.empty() && line.back() == '\r') line.pop_back();
            try {
                hostd::validate_password(line);
            } catch (const hostd::Error& e) {
                std::cerr << "hostctl: " << e.what() << "\n";
                code = kInvalid;
                return;
            }
            req.password = line;
        }
        auto r = hostd::Client(ctx.socket).set_password(name, req);
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render_one(*r.value));
            return;
        }
        std::cout << "Tenant '" << name << "' has a new password; the old one no longer logs in.\n"
                  << "URL:      " << r.value->url << "\n";
        // A password the operator typed is not printed back.
        if (!from_stdin) std::cout << "Password: " << r.value->password.value_or("") << "\n";
    });

    // start / stop / restart
    auto* start = app.add_subcommand("start", "Start a tenant stopped with hostctl stop (or one that is down), and route it again");
    start->footer("Example: hostctl start acme");
    start->add_option("name", name, "Tenant name")->required();
    auto* stop = app.add_subcommand("stop", "Stop a tenant on purpose: unrouted, PostgreSQL stopped, and it stays stopped "
                                            "across reconcile, hostd restarts and reboots until hostctl start");
    stop->footer("Example: hostctl stop acme");
    stop->add_option("name", name, "Tenant name")->required();
    auto* wake = app.add_subcommand("wake", "Wake a hibernated tenant now, as its next connection would (a running one is "
                                            "left as it is; one stopped on purpose stays stopped: hostctl start runs it)");
    wake->footer("Example: hostctl wake acme");
    wake->add_option("name", name, "Tenant name")->required();
    auto* restart = app.add_subcommand("restart", "Restart a tenant's PostgreSQL (its sessions are cut; settings waiting for a "
                                                  "restart take effect); asks first on a terminal");
    restart->footer("Example: hostctl restart acme --yes");
    bool restart_yes = false;
    restart->add_option("name", name, "Tenant name")->required();
    restart->add_flag("-y,--yes", restart_yes, "Do not ask for confirmation (needed when not on a terminal)");
    auto lifecycle = [&](const char* verb) {
        const hostd::Client client(ctx.socket);
        hostd::Reply<hostd::TenantView> r;
        if (std::string(verb) == "start") r = client.start(name);
        else if (std::string(verb) == "stop") r = client.stop(name);
        else if (std::string(verb) == "wake") r = client.wake(name);
        else r = client.restart(name);
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) print_json(hostd::wire::render_one(*r.value));
        else print_live(*r.value);
    };
    start->callback([&] { lifecycle("start"); });
    stop->callback([&] { lifecycle("stop"); });
    wake->callback([&] { lifecycle("wake"); });
    restart->callback([&] {
        // Known and not stopped before anyone is asked (hostd says why it cannot otherwise).
        auto t = hostd::Client(ctx.socket).get(name);
        if (!finish(ctx, t, code)) return;
        if (t.value->state == hostd::TenantState::ready && !t.value->stopped &&
            !confirm_offline("Restarting tenant '" + name + "' stops its PostgreSQL and starts it again: its sessions are cut "
                             "and new connections fail for a moment.",
                             restart_yes, code))
            return;
        lifecycle("restart");
    });

    // switchover (an HA tenant)
    auto* switchover = app.add_subcommand("switchover", "Move an HA tenant's primary to another member (Patroni's switchover: "
                                                        "sessions on the old primary are cut, writes pause a few seconds); "
                                                        "prints its members afterwards");
    switchover->footer("Example: hostctl switchover acme --to db2\n"
                       "Without --to hostd picks the synchronous standby, else the running replica with the least lag.\n"
                       "In synchronous mode only the synchronous standby can take over.");
    std::string switchover_to;
    switchover->add_option("name", name, "Tenant name")->required();
    switchover->add_option("--to", switchover_to, "The member host to make primary (a host name as in [ha] hosts)");
    switchover->callback([&] {
        hostd::SwitchoverRequest req;
        if (!switchover_to.empty()) req.to = switchover_to;
        hostd::Reply<hostd::TenantView> r;
        {
            // One step, shown as create shows its steps (a spinner on a terminal): Patroni answers
            // once the new primary holds the lead, and hostd waits until it reports it.
            std::unique_ptr<ProgressView> view;
            if (!ctx.json_out) view = std::make_unique<ProgressView>(name, ::isatty(2) == 1);
            if (view) view->step("switchover", -1);
            const auto t0 = std::chrono::steady_clock::now();
            r = hostd::Client(ctx.socket).switchover(name, req);
            if (view && r.ok())
                view->step("switchover", static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                               std::chrono::steady_clock::now() - t0).count()));
            if (view) view->finish();
        }
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render_one(*r.value));
            return;
        }
        const hostd::TenantView& t = *r.value;
        std::cout << "Tenant '" << t.name << "': " << (t.ha && !t.ha->leader.empty() ? "'" + t.ha->leader + "' is primary now"
                                                                                     : "the primary is not known yet")
                  << ".\n\n";
        print_table(hostd::member_rows(t.members));
    });

    // replace (an HA tenant's member)
    auto* replace = app.add_subcommand("replace", "Replace an HA tenant's member: the member on HOST is deleted and a new "
                                                  "one made (on --with, or on HOST again), cloned from the primary; run it on "
                                                  "another member's host");
    replace->footer("Example: hostctl replace acme db3 --with db4\n"
                    "Without --with the member is rebuilt on its own host (its disk lost or its data damaged).\n"
                    "The primary is never replaced: switch over first. A host that cannot be reached keeps its old\n"
                    "member until it is back: its hostd then sees it replaced and deletes it.");
    std::string replace_host, replace_with;
    replace->add_option("name", name, "Tenant name")->required();
    replace->add_option("host", replace_host, "The member's host (a host name as in [ha] hosts)")->required();
    replace->add_option("--with", replace_with, "The host of the new member (one of [ha] hosts without a member)");
    replace->callback([&] {
        hostd::ReplaceRequest req{.member = replace_host};
        if (!replace_with.empty()) req.with = replace_with;
        hostd::Reply<hostd::TenantView> r;
        {
            std::unique_ptr<ProgressView> view;
            if (!ctx.json_out) view = std::make_unique<ProgressView>(name, ::isatty(2) == 1);
            r = hostd::Client(ctx.socket).replace(name, req, [&](std::string_view step, long ms) {
                if (view) view->step(std::string(step), ms);
            });
            if (view) view->finish();
        }
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render_one(*r.value));
            return;
        }
        std::cout << "Tenant '" << r.value->name << "': the member on '" << replace_host << "' is replaced"
                  << (replace_with.empty() ? " (rebuilt there)" : " by one on '" + replace_with + "'") << ".\n\n";
        print_table(hostd::member_rows(r.value->members));
    });

    // delete
    auto* del = app.add_subcommand("delete", "Delete a tenant; its data is kept unless --purge");
    del->footer("Example: hostctl delete acme --purge --yes");
    bool purge = false, yes = false, purge_backups = false;
    del->add_option("name", name, "Tenant name")->required();
    del->add_flag("--purge", purge, "Also destroy the tenant's data (cannot be undone); its backups are kept for "
                                    "backup.deleted_retention days, for branches");
    del->add_flag("--purge-backups", purge_backups, "With --purge: destroy its backups too (also those of a tenant deleted "
                                                    "earlier)")->needs("--purge");
    del->add_flag("-y,--yes", yes, "Do not ask for confirmation of --purge");
    del->callback([&] {
        if (purge && !yes) {
            if (!::isatty(0)) {
                std::cerr << "hostctl: --purge destroys data; add --yes to confirm when not on a terminal\n";
                code = kInvalid;
                return;
            }
            std::cerr << "Destroy all data of tenant '" << name << "'? Type its name to confirm: ";
            std::string answer;
            std::getline(std::cin, answer);
            if (answer != name) {
                std::cerr << "hostctl: not confirmed; nothing was deleted\n";
                code = kInvalid;
                return;
            }
        }
        auto r = hostd::Client(ctx.socket).remove(name, purge, purge_backups);
        if (!finish(ctx, r, code)) return;
        const auto& d = *r.value;
        if (ctx.json_out) print_json(hostd::wire::render(d));
        else if (purge && d.backups == "kept")
            std::cout << "Tenant '" << name << "' deleted; its data is destroyed. Its backups are kept "
                      << (d.kept_until.empty() ? "until purged" : "until " + d.kept_until) << " (hostctl create NEW --from "
                      << name << " branches from them; hostctl delete " << name << " --purge --purge-backups removes them).\n";
        else if (purge && d.backups == "purged") std::cout << "Tenant '" << name << "' deleted; its data and backups are destroyed.\n";
        else if (purge) std::cout << "Tenant '" << name << "' deleted; its data is destroyed.\n";
        else std::cout << "Tenant '" << name << "' deleted; its data is kept (hostctl create " << name << " --reuse brings it back).\n";
    });

    // logs: the tenant's journal (its PostgreSQL log goes to stderr, so to the journal)
    auto* logs = app.add_subcommand("logs", "Show a tenant's PostgreSQL log (its unit's journal)");
    logs->footer("Example: hostctl logs acme -f");
    bool follow = false;
    int lines = 50;
    logs->add_option("name", name, "Tenant name")->required();
    logs->add_flag("-f,--follow", follow, "Keep printing new lines");
    logs->add_option("-n,--lines", lines, "How many recent lines")->capture_default_str();
    logs->callback([&] {
        auto r = hostd::Client(ctx.socket).get(name);
        if (!finish(ctx, r, code)) return;
        std::vector<std::string> args = {"journalctl", "--no-pager", "-u", r.value->unit, "-n", std::to_string(lines)};
        if (follow) args.push_back("-f");
        if (ctx.json_out) args.insert(args.end(), {"-o", "json"});
        code = run_tool(args);
    });

    // psql: a session with the tenant's credentials, through the proxy like a customer
    auto* psql = app.add_subcommand("psql", "Open psql as the tenant's admin user, through the proxy");
    psql->footer("Example: hostctl psql acme -- -c 'select version()'");
    std::vector<std::string> psql_args;
    psql->add_option("name", name, "Tenant name")->required();
    psql->add_option("args", psql_args, "Arguments for psql (after --)");
    psql->callback([&] {
        auto t = tenant_with_url(ctx, name, code);
        if (!t) return;
        // The password goes to psql in its environment (readable by its own user and root
        // only), never on its command line, which every user sees in ps.
        if (t->password) ::setenv("PGPASSWORD", t->password->c_str(), 1);
        std::vector<std::string> args = {"psql", hostd::url_without_password(t->url)};
        args.insert(args.end(), psql_args.begin(), psql_args.end());
        code = run_tool(args);
    });

    // ca
    auto* ca = app.add_subcommand("ca", "Print hostd's CA certificate (PEM), which signs every tenant's server certificate");
    ca->footer("Example: hostctl ca > hostd-ca.crt; psql \"$(hostctl url acme | sed 's/require/verify-full/')&sslrootcert=hostd-ca.crt\"");
    ca->callback([&] {
        auto r = hostd::Client(ctx.socket).ca();
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) print_json(hostd::wire::render_ca(*r.value));
        else std::cout << *r.value;
    });

    // reconcile
    auto* rec = app.add_subcommand("reconcile", "Finish or roll back interrupted operations, start what should run (not what is stopped on purpose), "
                                                 "remove orphans; prints each action taken");
    rec->footer("Example: hostctl reconcile");
    rec->callback([&] {
        auto r = hostd::Client(ctx.socket).reconcile();
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) {
            print_json(hostd::wire::render(*r.value));
            return;
        }
        for (auto& a : r.value->actions)
            std::cout << a.tenant << ": " << a.action << (a.problem.empty() ? "" : " (" + a.problem + ")") << "\n";
        std::cout << "Reconciled in " << r.value->duration_ms << " ms, " << r.value->actions.size() << " action(s).\n";
    });

    // host
    auto* host = app.add_subcommand("host", "Show the host's capacity: memory, CPU, disk and ports committed to tenants");
    host->footer("Example: hostctl host");
    host->callback([&] {
        auto r = hostd::Client(ctx.socket).host();
        if (!finish(ctx, r, code)) return;
        if (ctx.json_out) print_json(hostd::wire::render(*r.value));
        else print_table(hostd::host_rows(*r.value));
    });

    // completion and man: generated from the definitions above, so they match --help.
    auto* completion = app.add_subcommand("completion", "Print a shell completion script");
    completion->footer("Example: hostctl completion bash > /etc/bash_completion.d/hostctl\n"
                       "(installed as /usr/share/bash-completion/completions/hostctl by cmake --install)");
    std::string shell;
    completion->add_option("shell", shell, "Shell: bash")->required()->check(CLI::IsMember({"bash"}));
    completion->callback([&] { std::cout << hostd::bash_completion(app, "hostctl list --names"); });
    auto* man = app.add_subcommand("man", "Print hostctl's manual page (roff), generated from the same source as --help");
    man->footer("Example: hostctl man | man -l -");
    man->callback([&] {
        hostd::ManInfo info;
        info.section = "1";
        info.version = "hostctl " HOSTD_VERSION;
        info.description =
            "hostctl talks to hostd over its Unix socket (HTTP/JSON) to create, change, inspect and delete "
            "PostgreSQL tenants. Each command's --help shows its options and an example.\n"
            "Read commands (list, show, host, url, ca, logs, backups) print JSON with --json.";
        info.exit_status = "0 ok\n1 hostd tried and failed (HTTP 5xx)\n2 invalid input (HTTP 400, bad flags, purge or an "
                           "offline operation not confirmed)\n3 not found (HTTP 404)\n4 conflict: exists, busy, or refused as unsafe (HTTP 409)\n"
                           "5 permission denied (HTTP 403)\n6 hostd unreachable (socket missing or refused)";
        info.environment = "HOSTD_SOCKET: hostd's API socket (default /run/hostd/hostd.sock).";
        info.files = "/run/hostd/hostd.sock: the API socket; members of group hostd may use it.";
        info.see_also = "hostd(8), psql(1), journalctl(1)";
        std::cout << hostd::man_page(app, info);
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        // A typo gets the nearest command or option named.
        if (const std::string hint = hostd::suggestion(app, argc, argv); !hint.empty()) std::cerr << hint << "\n";
        return rc == 0 ? kOk : kInvalid;
    }
    return code;
}
