// Documentation generated from a CLI11 definition, so --help, the man page and shell
// completion never disagree: a roff man page and a bash completion script. Pure functions.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace hostd {

struct ManInfo {
    std::string section = "1";   // "1" for user commands, "8" for daemons
    std::string version;         // e.g. "hostd 0.1.0"
    std::string description;     // DESCRIPTION paragraph(s), plain text
    std::string exit_status;     // EXIT STATUS text, plain text ("" = none)
    std::string environment;     // ENVIRONMENT text ("" = none)
    std::string files;           // FILES text ("" = none)
    std::string see_also;        // e.g. "hostd(8), psql(1)"
};

// Escapes text for roff: backslashes, and a leading '.' or '\'' that roff would take as a request.
std::string roff_escape(const std::string& text);

// The man page: NAME, SYNOPSIS, DESCRIPTION, OPTIONS, COMMANDS (each subcommand's arguments,
// options and its footer, where hostctl keeps the example), then the ManInfo sections.
std::string man_page(const CLI::App& app, const ManInfo& info);

// A bash completion script (`complete -F`) for the app's subcommands and their options. For a
// subcommand whose first positional is called "name", names_command (if given) is run to
// offer its output too (e.g. "hostctl list --names" for tenant names).
std::string bash_completion(const CLI::App& app, const std::string& names_command = "");

// The candidate nearest to word by edit distance, if it is near enough to be a typo (at most a
// third of the word's letters differ); "" otherwise. Pure.
std::string nearest(const std::string& word, const std::vector<std::string>& candidates);
// For a command line the app refused: "did you mean ..." for an unknown subcommand (the first
// word that is no option) or an unknown --option of the subcommand given; "" if none is near.
std::string suggestion(const CLI::App& app, int argc, const char* const* argv);

// Rows as left-aligned columns two spaces apart; no trailing spaces.
std::string render_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace hostd
