// hostctl: parse, call hostd, print, exit with a code that mirrors the result.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
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
#include "hostd/cli_doc.h"
#include "hostd/client.h"

using nlohmann::json;

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

// One call; on error prints one line to stderr and returns the exit code in `code`.
bool finish_call(const Ctx& ctx, const hostd::ApiResponse& r, json& out, int& code) {
    if (r.status == 0) {
        std::cerr << "hostctl: " << r.transport_error << " (is hostd.socket enabled?)\n";
        code = kUnreachable;
        return false;
    }
    code = exit_for(r.status);
    if (code != kOk) {
        if (ctx.json_out && !r.body.is_null()) std::cout << r.body.dump(2) << "\n";
        std::string msg = r.body.is_object() && r.body.contains("error") ? r.body["error"].value("message", "")
                                                                        : "HTTP " + std::to_string(r.status);
        std::cerr << "hostctl: " << msg << "\n";
        return false;
    }
    out = r.body;
    return true;
}

bool call(const Ctx& ctx, const std::string& method, const std::string& path, const json* body, json& out, int& code) {
    hostd::Client client(ctx.socket);
    return finish_call(ctx, client.call(method, path, body), out, code);
}

// create's progress on stderr: plain "  step  N ms" lines when stderr is not a terminal; on a
// terminal the same lines plus a spinner line for the step under way, redrawn every 100 ms.
class ProgressView {
public:
    ProgressView(std::string name, bool tty) : name_(std::move(name)), tty_(tty) {
        if (tty_) spinner_ = std::thread([this] { spin(); });
    }
    ~ProgressView() { finish(); }
    void step(const std::string& step, long ms) {
        std::lock_guard g(mu_);
        if (tty_) std::cerr << "\r\033[K";
        std::cerr << hostd::step_line(step, ms) << "\n" << std::flush;
        last_ = step;
        since_ = std::chrono::steady_clock::now();
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
            std::cerr << "\r\033[K" << hostd::spinner_line(frame, name_ + (last_.empty() ? ": starting" : ": after " + last_), ms)
                      << std::flush;
            cv_.wait_for(l, std::chrono::milliseconds(100), [&] { return stop_; });
        }
    }
    std::string name_, last_;
    bool tty_;
    bool stop_ = false;
    std::mutex mu_;
    std::condition_variable cv_;
    std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
    std::thread spinner_;
};

// --set name=value (repeatable) → {"name": "value"}; PostgreSQL parses the values.
bool settings_from(const std::vector<std::string>& pairs, json& out, int& code) {
    for (auto& p : pairs) {
        auto eq = p.find('=');
        if (eq == std::string::npos || eq == 0) {
            std::cerr << "hostctl: --set takes NAME=VALUE, not '" << p << "'\n";
            code = kInvalid;
            return false;
        }
        out[p.substr(0, eq)] = p.substr(eq + 1);
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

std::string tenant_path(const std::string& name) { return "/v1/tenants/" + hostd::Client::escape(name); }

std::string str(const json& j, const char* k) {
    if (!j.contains(k) || j[k].is_null()) return "";
    return j[k].is_string() ? j[k].get<std::string>() : j[k].dump();
}

// The tenant's connection URL (with its password); nullopt with code set if there is none.
std::optional<std::string> tenant_url(const Ctx& ctx, const std::string& name, int& code) {
    json out;
    if (!call(ctx, "GET", tenant_path(name), nullptr, out, code)) return std::nullopt;
    auto u = str(out["tenant"], "url");
    if (u.empty()) {
        std::cerr << "hostctl: tenant '" << name << "' is " << str(out["tenant"], "state") << ", it has no URL\n";
        code = kConflict;
        return std::nullopt;
    }
    return u;
}

void print_table(const std::vector<std::vector<std::string>>& rows) { std::cout << hostd::render_table(rows); }

void print_tenant(const json& t) {
    std::vector<std::vector<std::string>> rows;
    for (const char* k : {"name", "state", "step", "url", "admin_user", "password", "public_port", "port", "backend",
                          "device", "image", "filesystem", "fs_uuid", "label", "mountpoint", "unit", "os_user", "created_at"})
        if (t.contains(k) && !str(t, k).empty()) rows.push_back({std::string(k) + ":", str(t, k)});
    rows.push_back({"disk_size:", hostd::format_size(t.value("disk_size", uint64_t{0}))});
    rows.push_back({"memory:", hostd::format_size(t.value("memory", uint64_t{0}))});
    std::ostringstream cpu;
    cpu << t.value("cpu", 0.0);
    rows.push_back({"cpu:", cpu.str()});
    rows.push_back({"tasks:", str(t, "tasks")});
    if (t.value("read_only", false))
        rows.push_back({"read_only:", "yes: the disk is nearly full (hostd's disk-full guard); free space or resize"});
    if (t.contains("status")) {
        auto& s = t["status"];
        if (s.contains("unit")) rows.push_back({"unit_state:", str(s["unit"], "active_state") + " (" + str(s["unit"], "sub_state") + ")"});
        if (s.contains("memory_current")) rows.push_back({"memory_used:", hostd::format_size(s["memory_current"].get<uint64_t>())});
        if (s.contains("disk"))
            rows.push_back({"disk_used:", hostd::format_size(s["disk"]["bytes_used"].get<uint64_t>()) + " of " +
                                              hostd::format_size(s["disk"]["bytes_total"].get<uint64_t>()) + ", inodes " +
                                              str(s["disk"], "inodes_used") + " of " + str(s["disk"], "inodes_total")});
    }
    print_table(rows);
}

}  // namespace

int main(int argc, char** argv) {
    Ctx ctx;
    if (const char* s = std::getenv("HOSTD_SOCKET")) ctx.socket = s;
    CLI::App app{"hostctl: manage hostd's PostgreSQL tenants", "hostctl"};
    app.footer(kExitHelp);
    app.require_subcommand(1);
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
    create->add_option("--backend", backend, "loop or device");
    std::string filesystem;
    bool force = false;
    create->add_option("--filesystem", filesystem, "ext4 (default) or xfs")->check(CLI::IsMember({"ext4", "xfs"}));
    create->add_flag("--force", force, "Device backend: format over an existing signature (never over a mounted, "
                                       "partitioned, held or claimed device); the reply says what was destroyed");
    create->add_flag("--reuse", reuse, "Bring back a tenant deleted without --purge, with its data");
    std::vector<std::string> create_settings;
    create->add_option("--set", create_settings, "PostgreSQL setting NAME=VALUE (repeatable), e.g. --set work_mem=64MB");
    create->callback([&] {
        json body = json::object();
        if (!disk.empty()) body["disk_size"] = disk;
        if (!memory.empty()) body["memory"] = memory;
        if (create->count("--cpu")) body["cpu"] = cpu;
        if (create->count("--tasks")) body["tasks"] = tasks;
        if (!device.empty()) body["device"] = device;
        if (!backend.empty()) body["backend"] = backend;
        if (reuse) body["reuse"] = true;
        if (!filesystem.empty()) body["filesystem"] = filesystem;
        if (force) body["force"] = true;
        if (!create_settings.empty()) {
            json s = json::object();
            if (!settings_from(create_settings, s, code)) return;
            body["settings"] = s;
        }
        json out;
        {
            // Each step as hostd finishes it (PUT ?progress=1 streams them); nothing extra with --json.
            std::unique_ptr<ProgressView> view;
            if (!ctx.json_out) view = std::make_unique<ProgressView>(name, ::isatty(2) == 1);
            hostd::Client client(ctx.socket);
            auto r = client.stream("PUT", tenant_path(name) + "?progress=1", &body, [&](const json& line) {
                if (view && line.contains("step")) view->step(str(line, "step"), line.value("ms", 0L));
            });
            if (view) view->finish();
            if (!finish_call(ctx, r, out, code)) return;
        }
        auto& t = out["tenant"];
        if (ctx.json_out) std::cout << out.dump(2) << "\n";
        else std::cout << "Tenant '" << str(t, "name") << "' is ready in " << str(t, "create_ms") << " ms.\n"
                       << "URL:      " << str(t, "url") << "\nPassword: " << str(t, "password") << "\n";
        if (!ctx.json_out && t.contains("destroyed"))
            std::cout << "Destroyed (--force): " << str(t, "destroyed") << "\n";
    });

    // resize
    auto* resize = app.add_subcommand("resize", "Grow a tenant's disk and filesystem (online where the kernel allows)");
    resize->footer("Example: hostctl resize acme --size 4G\n"
                   "Loop backend: hostd grows the image. Device backend: grow the volume first, then run this.\n"
                   "Shrinking is refused.");
    std::string new_size;
    resize->add_option("name", name, "Tenant name")->required();
    resize->add_option("--size", new_size, "New disk size, e.g. 4G")->required();
    resize->callback([&] {
        json body = {{"size", new_size}};
        json out;
        if (!call(ctx, "POST", tenant_path(name) + "/resize", &body, out, code)) return;
        if (ctx.json_out) {
            std::cout << out.dump(2) << "\n";
            return;
        }
        auto& t = out["tenant"];
        std::cout << "Tenant '" << name << "' now has a " << hostd::format_size(t.value("disk_size", uint64_t{0}))
                  << " disk (" << (t.value("online", true) ? "grown online" : "grown offline, PostgreSQL restarted")
                  << ", " << str(t, "resize_ms") << " ms).\n";
    });

    // list
    auto* list = app.add_subcommand("list", "List tenants: state, port, disk used/total, memory used/limit, CPU quota (time used), URL");
    list->footer("Example: hostctl list --json");
    bool names_only = false;
    list->add_flag("--names", names_only, "Only the names, one a line (used by shell completion)");
    list->callback([&] {
        json out;
        if (names_only) {
            if (!call(ctx, "GET", "/v1/tenants", nullptr, out, code)) return;
            for (auto& t : out["tenants"]) std::cout << str(t, "name") << "\n";
            return;
        }
        if (!call(ctx, "GET", "/v1/tenants?live=1", nullptr, out, code)) return;
        if (ctx.json_out) std::cout << out.dump(2) << "\n";
        else print_table(hostd::tenant_rows(out["tenants"]));
    });

    // show
    auto* show = app.add_subcommand("show", "Show one tenant, with its password and live status");
    show->footer("Example: hostctl show acme");
    show->add_option("name", name, "Tenant name")->required();
    show->callback([&] {
        json out;
        if (!call(ctx, "GET", tenant_path(name), nullptr, out, code)) return;
        if (ctx.json_out) std::cout << out.dump(2) << "\n";
        else print_tenant(out["tenant"]);
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
    auto* set = app.add_subcommand("set", "Change a tenant's limits live (no restart where systemd can apply them)");
    set->footer("Example: hostctl set acme --memory 1G --cpu 2");
    std::string set_memory;
    double set_cpu = 0;
    uint64_t set_tasks = 0, set_io = 0;
    set->add_option("name", name, "Tenant name")->required();
    set->add_option("--memory", set_memory, "Memory limit, e.g. 1G");
    set->add_option("--cpu", set_cpu, "CPU quota in CPUs, e.g. 2");
    set->add_option("--tasks", set_tasks, "Most processes/threads");
    set->add_option("--io-weight", set_io, "IO weight 1..10000 (default 100)");
    std::vector<std::string> set_settings;
    set->add_option("--set", set_settings, "PostgreSQL setting NAME=VALUE (repeatable); replaces the tenant's overrides");
    set->callback([&] {
        json body = json::object();
        if (!set_memory.empty()) body["memory"] = set_memory;
        if (set->count("--cpu")) body["cpu"] = set_cpu;
        if (set->count("--tasks")) body["tasks"] = set_tasks;
        if (set->count("--io-weight")) body["io_weight"] = set_io;
        if (!set_settings.empty()) {
            json s = json::object();
            if (!settings_from(set_settings, s, code)) return;
            body["settings"] = s;
        }
        if (body.empty()) {
            std::cerr << "hostctl: nothing to change; give --memory, --cpu, --tasks, --io-weight or --set\n";
            code = kInvalid;
            return;
        }
        json out;
        if (!call(ctx, "PATCH", tenant_path(name), &body, out, code)) return;
        if (ctx.json_out) {
            std::cout << out.dump(2) << "\n";
            return;
        }
        auto& t = out["tenant"];
        std::cout << "Tenant '" << name << "' now has memory " << hostd::format_size(t.value("memory", uint64_t{0}))
                  << ", cpu " << t.value("cpu", 0.0) << ", tasks " << str(t, "tasks") << ".\n";
        if (!t["pending_restart"].empty())
            std::cout << "PostgreSQL applies " << t["pending_restart"].dump() << " at its next restart.\n";
    });

    // delete
    auto* del = app.add_subcommand("delete", "Delete a tenant; its data is kept unless --purge");
    del->footer("Example: hostctl delete acme --purge --yes");
    bool purge = false, yes = false;
    del->add_option("name", name, "Tenant name")->required();
    del->add_flag("--purge", purge, "Also destroy the tenant's data (cannot be undone)");
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
        json out;
        if (!call(ctx, "DELETE", tenant_path(name) + (purge ? "?purge=true" : ""), nullptr, out, code)) return;
        if (ctx.json_out) std::cout << out.dump(2) << "\n";
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
        json out;
        if (!call(ctx, "GET", tenant_path(name), nullptr, out, code)) return;
        std::vector<std::string> args = {"journalctl", "--no-pager", "-u", str(out["tenant"], "unit"), "-n", std::to_string(lines)};
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
        auto u = tenant_url(ctx, name, code);
        if (!u) return;
        std::vector<std::string> args = {"psql", *u};
        args.insert(args.end(), psql_args.begin(), psql_args.end());
        code = run_tool(args);
    });

    // ca
    auto* ca = app.add_subcommand("ca", "Print hostd's CA certificate (PEM), which signs every tenant's server certificate");
    ca->footer("Example: hostctl ca > hostd-ca.crt; psql \"$(hostctl url acme | sed 's/require/verify-full/')&sslrootcert=hostd-ca.crt\"");
    ca->callback([&] {
        json out;
        if (!call(ctx, "GET", "/v1/ca", nullptr, out, code)) return;
        if (ctx.json_out) std::cout << out.dump(2) << "\n";
        else std::cout << str(out, "ca");
    });

    // reconcile
    auto* rec = app.add_subcommand("reconcile", "Finish or roll back interrupted operations, restart what should run, remove orphans");
    rec->footer("Example: hostctl reconcile");
    rec->callback([&] {
        json out;
        if (!call(ctx, "POST", "/v1/reconcile", nullptr, out, code)) return;
        if (ctx.json_out) {
            std::cout << out.dump(2) << "\n";
            return;
        }
        auto& r = out["reconcile"];
        for (auto& a : r["actions"])
            std::cout << str(a, "tenant") << ": " << str(a, "action") << (a.contains("problem") ? " (" + str(a, "problem") + ")" : "") << "\n";
        std::cout << "Reconciled in " << str(r, "duration_ms") << " ms, " << r["actions"].size() << " action(s).\n";
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
            "Read commands (list, show, url, ca, logs) print JSON with --json.";
        info.exit_status = "0 ok\n1 hostd tried and failed (HTTP 5xx)\n2 invalid input (HTTP 400, bad flags, purge not "
                           "confirmed)\n3 not found (HTTP 404)\n4 conflict: exists, busy, or refused as unsafe (HTTP 409)\n"
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
        return rc == 0 ? kOk : kInvalid;
    }
    return code;
}
