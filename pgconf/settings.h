// Per-tenant PostgreSQL setting overrides: a request's `settings` map, checked against
// PostgreSQL's own list of settings, their types, ranges, units and enum values, and against
// what hostd must keep for itself; then rendered as hostd.override.conf, which the tenant's
// postgresql.conf includes last. Throws hostd::Error (base/error.h); never logs.
//
// Where the list comes from: `postgres --describe-config` names the settings a configuration
// file may set, with type, context and range, but no units and no enum values. Those come
// from pgconf/pg15-settings.tsv (pg_settings of the same server, restricted to the names
// describe-config lists; written by pgconf/gen-settings), compiled into hostd so the daemon
// needs no data file. SettingsCatalog::load() runs the installed server's describe-config and
// completes it from that table; builtin() is the table alone.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hostd::pgconf {

struct SettingSpec {
    std::string name;     // as PostgreSQL spells it: work_mem, TimeZone, DateStyle
    std::string vartype;  // bool, integer, real, string, enum
    std::string context;  // internal, postmaster, sighup, superuser-backend, backend, superuser, user
    std::string unit;     // base unit of an integer or real: B, kB, MB, 8kB, ms, s, min; empty if none
    std::optional<double> min, max;     // in the base unit (integer and real)
    std::vector<std::string> enumvals;  // enum: the accepted values (an empty one is possible)
};

class SettingsCatalog {
public:
    // pgconf/pg15-settings.tsv, compiled in.
    static SettingsCatalog builtin();
    // The table format of pgconf/pg15-settings.tsv: '#' comment lines, then one setting a line,
    // tab-separated: name, vartype, context, unit, min, max, enum values joined by '|'.
    static SettingsCatalog parse_table(std::string_view tsv);
    // The output of `postgres --describe-config` (tab-separated: name, context, group, VARTYPE,
    // reset value, min, max, short and long description). Units and enum values are taken from
    // `complete_from` for each name it has with the same type.
    static SettingsCatalog parse_describe_config(std::string_view text,
                                                 const SettingsCatalog* complete_from = nullptr);
    // Runs `<bindir>/postgres --describe-config` and completes it from builtin().
    // Errc::unavailable if the server cannot be run.
    static SettingsCatalog load(const std::string& bindir);

    // Case-insensitive, as PostgreSQL looks names up; nullptr if unknown.
    const SettingSpec* find(std::string_view name) const;
    // Every setting, sorted by lower-case name.
    const std::vector<SettingSpec>& all() const { return specs_; }

private:
    explicit SettingsCatalog(std::vector<SettingSpec> specs);
    std::vector<SettingSpec> specs_;
};

// Checks a request's settings (values already stringified: JSON "64MB", 250, true arrive as
// "64MB", "250", "true") and returns them normalized, keyed by lower-case name:
//   bool     on/off/true/false/yes/no/1/0, any case → "on" / "off"
//   integer  PostgreSQL's syntax: a number (decimal, 0x hex, leading-0 octal, or a fraction that
//            is rounded) and, for a setting with a unit, an optional unit (B kB MB GB TB /
//            us ms s min h d); converted to the base unit as the server does and checked
//            against min/max; written back the way SHOW prints it ("64MB", "1536kB", "-1")
//   real     a decimal number, optionally with a unit; written in its shortest exact form
//   enum     one of the listed values, any case → the listed spelling
//   string   anything without control characters, unchanged
// Refused with Errc::invalid and field "settings.<name as given>": an unknown name (with the
// closest known one suggested), a name hostd keeps for itself (protected_settings(), with its
// reason), a setting PostgreSQL only reads at server start that is not on
// restart_settings_allowed(), an internal (read-only) one, a malformed or out-of-range value,
// the same setting twice in different spellings; and combinations PostgreSQL refuses at start
// (wal_level=minimal with WAL senders or archiving; superuser_reserved_connections not below
// max_connections).
std::map<std::string, std::string> validate_overrides(const SettingsCatalog& catalog,
                                                      const std::map<std::string, std::string>& in);

// The settings among before/after (both validated) that only a restart applies and whose value
// differs, or that one of them has and the other not: the caller tells the operator (or
// restarts) rather than a reload. Sorted.
std::vector<std::string> settings_needing_restart(const SettingsCatalog& catalog,
                                                  const std::map<std::string, std::string>& before,
                                                  const std::map<std::string, std::string>& after);

// hostd.override.conf: a header, then `name = 'value'` per setting in name order, every value
// quoted the PostgreSQL way. Errc::invalid for a name that is not a plain setting name or a
// value with a control character (a validated map has neither).
std::string render_overrides(const std::map<std::string, std::string>& validated);

// The number a setting's value stands for (any value validate_overrides accepts): in bytes for
// a memory setting ("128MB", or "16384" of shared_buffers' 8kB pages → 134217728), else in its
// base unit or plain; nullopt for a setting that is not an integer or real, or a value that
// does not parse.
std::optional<double> setting_number(const SettingsCatalog& catalog, std::string_view name, const std::string& value);

struct ServerCheck {
    std::string bindir;  // e.g. /usr/lib/postgresql/15/bin
    uid_t uid = 0;       // an unprivileged user to run postgres as (the tenant's); not root
    gid_t gid = 0;
};

// The checks validate_overrides cannot make without the server: PostgreSQL's own check of each
// value (time zones, locales, search_path syntax, max_stack_depth against the stack limit...),
// which at server start are fatal. Writes the rendered overrides (after placeholder paths,
// which nothing opens) to a file in a private directory under /tmp and runs
// `postgres --config-file=<it> -C port` as uid/gid: the server reads the file as it would at
// start, prints one value and exits (~30 ms). The directory is always removed. A rejected value → Errc::invalid with
// PostgreSQL's message and field "settings.<name>" (when the message names one setting).
void check_overrides_with_server(const ServerCheck& check, const std::map<std::string, std::string>& validated);

struct ProtectedSetting {
    std::string_view name;
    std::string_view only_value;  // empty: refused whatever the value; else the one value allowed
    std::string_view reason;
};
// What hostd keeps for itself, and why.
std::span<const ProtectedSetting> protected_settings();
// The settings PostgreSQL only reads at server start ("postmaster" context) that a tenant may set.
std::span<const std::string_view> restart_settings_allowed();

}  // namespace hostd::pgconf
