// libpq checks: connect, SELECT 1, one SQL command. Every libpq handle is owned by a
// unique_ptr with a deleter struct, so no path (throw included) leaks a connection.

#include <libpq-fe.h>
#include <poll.h>
#include <cstring>

#include <algorithm>
#include <cstring>
#include <memory>
#include <thread>

#include "base/error.h"
#include "pgconf/pgconf.h"

namespace hostd::pgconf {
namespace {

struct ConnDeleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct ResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// libpq's messages end in a newline and may span lines ("connection to server ... failed:
// FATAL: ..."); one line reads better in the journal and in a JSON error.
std::string one_line(const char* msg) {
    std::string s = msg ? msg : "";
    std::string out;
    bool pending_sep = false;
    for (char c : s) {
        if (c == '\n' || c == '\r') {
            pending_sep = !out.empty();
            continue;
        }
        if (pending_sep) {
            out += "; ";
            pending_sep = false;
        }
        out += c;
    }
    while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    return out.empty() ? "no message from libpq" : out;
}

std::string where(const ConnParams& p) {
    return "PostgreSQL at '" + p.host + "' port " + std::to_string(p.port) + " as '" + p.user + "'";
}

Conn connect(const ConnParams& p) {
    const std::string port = std::to_string(p.port);
    const std::string timeout = std::to_string(p.connect_timeout_s > 0 ? p.connect_timeout_s : 1);
    // expand_dbname = 0: dbname is a name, never parsed as a connection string.
    // gssencmode = disable: no Kerberos probe (and its delay) on these local connections.
    // An empty value (no hostaddr) counts as not given.
    const char* keys[] = {"host", "port", "user", "password", "dbname", "connect_timeout",
                          "application_name", "gssencmode", "sslmode", "hostaddr", "options", nullptr};
    const char* vals[] = {p.host.c_str(), port.c_str(), p.user.c_str(), p.password.c_str(), p.dbname.c_str(),
                          timeout.c_str(), "hostd", "disable", p.sslmode.c_str(), p.hostaddr.c_str(),
                          p.options.c_str(), nullptr};
    Conn c(PQconnectdbParams(keys, vals, 0));
    if (!c) throw Error(Errc::unavailable, "Failed to connect to " + where(p) + ": out of memory");
    if (PQstatus(c.get()) != CONNECTION_OK)
        throw Error(Errc::unavailable, "Failed to connect to " + where(p) + ": " + one_line(PQerrorMessage(c.get())));
    return c;
}

// PQexec, or with p.query_timeout_ms the same within that time: the answer is awaited with
// poll() on libpq's socket, and a statement still running at the deadline is cancelled.
// Returns the last result, as PQexec does.
Result run(PGconn* c, const ConnParams& p, const std::string& sql) {
    if (p.query_timeout_ms <= 0) return Result(PQexec(c, sql.c_str()));
    if (!PQsendQuery(c, sql.c_str()))
        throw Error(Errc::failed, "SQL on " + where(p) + " failed: " + one_line(PQerrorMessage(c)));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(p.query_timeout_ms);
    Result last;
    for (;;) {
        while (!PQisBusy(c)) {
            PGresult* r = PQgetResult(c);
            if (!r) return last;
            last.reset(r);
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd pfd{.fd = PQsocket(c), .events = POLLIN, .revents = 0};
        if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) == 0) {
            if (PGcancel* cancel = PQgetCancel(c)) {
                char err[256];
                PQcancel(cancel, err, sizeof err);
                PQfreeCancel(cancel);
            }
            throw Error(Errc::unavailable, "No answer from " + where(p) + " within " + std::to_string(p.query_timeout_ms) +
                                               " ms; the statement was cancelled");
        }
        if (!PQconsumeInput(c)) throw Error(Errc::failed, "SQL on " + where(p) + " failed: " + one_line(PQerrorMessage(c)));
    }
}

}  // namespace

ConnParams monitor_params(const std::string& socket_dir, uint16_t port) {
    return {.host = socket_dir, .port = port, .user = kMonitorRole, .connect_timeout_s = 2, .sslmode = "disable",
            .options = "-c search_path=pg_catalog -c statement_timeout=2000 -c lock_timeout=1000 "
                       "-c default_transaction_read_only=on",
            .query_timeout_ms = 3000};
}

std::string monitor_role_sql() {
    return std::string("DO $hostd$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '") + kMonitorRole +
           "') THEN CREATE ROLE " + kMonitorRole + " LOGIN; END IF; END $hostd$; GRANT pg_monitor TO " + kMonitorRole + ";";
}

std::string backup_role_sql(const std::string& role) {
    return "DO $hostd$ BEGIN IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '" + role +
           "') THEN CREATE ROLE " + role + " LOGIN SUPERUSER; ELSE ALTER ROLE " + role +
           " LOGIN SUPERUSER; END IF; END $hostd$;";
}

namespace {
PGPing ping_code(const ConnParams& p) {
    const std::string port = std::to_string(p.port);
    const std::string timeout = std::to_string(p.connect_timeout_s > 0 ? p.connect_timeout_s : 1);
    const char* keys[] = {"host", "port", "user", "dbname", "connect_timeout", "gssencmode", "sslmode", "hostaddr", nullptr};
    const char* vals[] = {p.host.c_str(), port.c_str(), p.user.c_str(), p.dbname.c_str(), timeout.c_str(),
                          "disable", p.sslmode.c_str(), p.hostaddr.c_str(), nullptr};
    return PQpingParams(keys, vals, 0);
}
}  // namespace

bool ping(const ConnParams& p) { return ping_code(p) == PQPING_OK; }

std::string ping_problem(const ConnParams& p) {
    switch (ping_code(p)) {
    case PQPING_OK: return "";
    case PQPING_REJECT:
        return "PostgreSQL runs but refuses connections (starting up, shutting down or in crash recovery)";
    case PQPING_NO_RESPONSE: return "PostgreSQL does not answer on its socket (" + where(p) + ")";
    case PQPING_NO_ATTEMPT: return "hostd could not ask PostgreSQL (bad connection parameters)";
    }
    return "PostgreSQL did not answer";
}

void wait_ping(const ConnParams& p, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!ping(p)) {
        if (std::chrono::steady_clock::now() >= deadline)
            throw Error(Errc::unavailable, "No answer from " + where(p) + " within " +
                                               std::to_string(timeout.count() / 1000) + " s; see its journal");
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

void exec_sql(const ConnParams& p, const std::string& sql) {
    Conn c = connect(p);
    Result r = run(c.get(), p, sql);
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK)
        throw Error(Errc::failed, "SQL on " + where(p) + " failed: " +
                                      one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c.get())));
}

void check_select1(const ConnParams& p) {
    Conn c = connect(p);
    Result r = run(c.get(), p, "SELECT 1");
    if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK)
        throw Error(Errc::unavailable, "SELECT 1 failed on " + where(p) + ": " +
                                           one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c.get())));
    if (PQntuples(r.get()) != 1 || PQnfields(r.get()) != 1 || PQgetisnull(r.get(), 0, 0) ||
        std::string(PQgetvalue(r.get(), 0, 0)) != "1")
        throw Error(Errc::unavailable, "SELECT 1 on " + where(p) + " did not return 1");
}

void wait_select1(const ConnParams& p, std::chrono::milliseconds timeout, std::chrono::milliseconds interval) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        try {
            check_select1(p);
            return;
        } catch (const Error&) {
            if (std::chrono::steady_clock::now() >= deadline) throw;
        }
        // The last try comes at the deadline, not an interval before it.
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            interval, deadline - std::chrono::steady_clock::now()));
    }
}

void wait_exec_sql(const ConnParams& p, const std::string& sql, std::chrono::milliseconds timeout,
                   std::chrono::milliseconds interval) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    Conn c;
    for (;;) {
        try {
            c = connect(p);
            break;
        } catch (const Error&) {
            if (std::chrono::steady_clock::now() >= deadline) throw;
        }
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
            interval, deadline - std::chrono::steady_clock::now()));
    }
    Result r = run(c.get(), p, sql);
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK)
        throw Error(Errc::failed, "SQL on " + where(p) + " failed: " +
                                      one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c.get())));
}

namespace {
struct PqFreer {
    void operator()(char* s) const noexcept { PQfreemem(s); }
};
using PqText = std::unique_ptr<char, PqFreer>;

std::string quoted_ident(PGconn* c, const ConnParams& p, const std::string& name) {
    PqText ident(PQescapeIdentifier(c, name.c_str(), name.size()));
    if (!ident) throw Error(Errc::failed, "Failed to quote a role for " + where(p) + ": " + one_line(PQerrorMessage(c)));
    return ident.get();
}

// "ROLE <ident> PASSWORD <secret>": a SCRAM secret, which PostgreSQL stores as given.
std::string role_with_secret(PGconn* c, const ConnParams& p, const std::string& role, const std::string& secret) {
    PqText literal(PQescapeLiteral(c, secret.c_str(), secret.size()));
    if (!literal) throw Error(Errc::failed, "Failed to quote a secret for " + where(p) + ": " + one_line(PQerrorMessage(c)));
    return "ROLE " + quoted_ident(c, p, role) + " PASSWORD " + literal.get();
}

void run_command(PGconn* c, const ConnParams& p, const std::string& sql, const std::string& what) {
    Result r = run(c, p, sql);
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK)
        throw Error(Errc::failed, what + " on " + where(p) + " failed: " +
                                      one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c)));
}
}  // namespace

void set_role_password(const ConnParams& p, const std::string& role, const std::string& password) {
    Conn c = connect(p);
    // libpq's own SCRAM secret: an operator's password may need SASLprep, which scram_verifier leaves out.
    PqText verifier(PQencryptPasswordConn(c.get(), password.c_str(), role.c_str(), "scram-sha-256"));
    if (!verifier)
        throw Error(Errc::failed, "Failed to compute the password verifier for " + where(p) + ": " +
                                      one_line(PQerrorMessage(c.get())));
    run_command(c.get(), p, "ALTER " + role_with_secret(c.get(), p, role, verifier.get()),
                "Changing the password of role '" + role + "'");
}

void hand_over_cluster(ConnParams p, const std::string& bootstrap_role, const std::string& bootstrap_password,
                       const std::string& handover_role, const std::string& admin, const std::string& admin_verifier) {
    // One login and one transaction (a simple query of several statements): a login costs a
    // backend and a SCRAM exchange (PBKDF2 on this side), and three of them were a third of a
    // pool create's check step. The session's own role cannot be renamed, so the rename runs
    // as the hand-over role (SET SESSION AUTHORIZATION, allowed since the login is a
    // superuser's); it needs no login and no password. All of it or none of it is committed.
    if (!admin_verifier.starts_with("SCRAM-SHA-256$"))
        throw Error(Errc::invalid, "The admin's password must be given as its SCRAM secret (scram_verifier)", "password");
    p.user = bootstrap_role;
    p.password = bootstrap_password;
    Conn c = connect(p);
    const std::string handover = quoted_ident(c.get(), p, handover_role);
    run_command(c.get(), p,
                "CREATE ROLE " + handover + " SUPERUSER NOLOGIN; SET SESSION AUTHORIZATION " + handover + "; ALTER ROLE " +
                    quoted_ident(c.get(), p, bootstrap_role) + " RENAME TO " + quoted_ident(c.get(), p, admin) + "; ALTER " +
                    role_with_secret(c.get(), p, admin, admin_verifier) + "; RESET SESSION AUTHORIZATION; DROP ROLE " +
                    handover + "; " + monitor_role_sql(),
                "Handing the cluster over to the tenant's admin");
}

std::vector<std::string> query_column(const ConnParams& p, const std::string& sql) {
    Conn c = connect(p);
    Result r = run(c.get(), p, sql);
    if (!r) throw Error(Errc::failed, "SQL on " + where(p) + " failed: " + one_line(PQerrorMessage(c.get())));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
        throw Error(Errc::failed, "SQL on " + where(p) + " failed: " + one_line(PQresultErrorMessage(r.get())));
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(r.get()); i++) out.emplace_back(PQgetvalue(r.get(), i, 0));
    return out;
}

}  // namespace hostd::pgconf
