#include "clidoc/clidoc.h"

#include <algorithm>
#include <cstdio>
#include <sstream>


namespace hostd {

namespace {

std::vector<const CLI::App*> subcommands(const CLI::App& app) {
    return app.get_subcommands([](const CLI::App*) { return true; });
}

// Options that carry a name a user types (not the help flag's duplicates, not positionals).
std::vector<const CLI::Option*> named_options(const CLI::App& app) {
    return app.get_options([](const CLI::Option* o) { return !o->get_positional(); });
}

std::vector<const CLI::Option*> positionals(const CLI::App& app) {
    return app.get_options([](const CLI::Option* o) { return o->get_positional(); });
}

// The values a CLI::IsMember check allows, from the description it gives the option's type
// ("TEXT:{ext4,xfs}"); empty when the option has no such check.
std::vector<std::string> member_values(const CLI::Option& o) {
    const std::string t = o.get_type_name();
    const auto open = t.find(":{");
    const auto close = t.find('}', open == std::string::npos ? 0 : open);
    std::vector<std::string> out;
    if (open == std::string::npos || close == std::string::npos) return out;
    std::string item;
    for (char c : t.substr(open + 2, close - open - 2)) {
        if (c == ',') {
            if (!item.empty()) out.push_back(item);
            item.clear();
        } else if (c != ' ') {
            item += c;
        }
    }
    if (!item.empty()) out.push_back(item);
    return out;
}

bool takes_value(const CLI::Option& o) { return o.get_expected_max() != 0; }

std::string flag_names(const CLI::Option& o) {
    std::string s;
    for (auto& n : o.get_snames()) s += (s.empty() ? "" : ", ") + std::string("-") + n;
    for (auto& n : o.get_lnames()) s += (s.empty() ? "" : ", ") + std::string("--") + n;
    return s;
}

std::string metavar(const CLI::Option& o) {
    if (o.get_expected_max() == 0) return "";  // a flag takes no value
    std::string name = o.get_lnames().empty() ? o.get_name() : o.get_lnames().front();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return c == '-' ? '_' : std::toupper(c); });
    return name;
}

void option_items(std::ostringstream& out, const CLI::App& app) {
    for (auto* o : named_options(app)) {
        auto mv = metavar(*o);
        out << ".TP\n\\fB" << roff_escape(flag_names(*o)) << "\\fR" << (mv.empty() ? "" : " \\fI" + mv + "\\fR") << "\n"
            << roff_escape(o->get_description()) << "\n";
    }
}

void paragraphs(std::ostringstream& out, const std::string& text) {
    std::istringstream in(text);
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
        if (!first) out << ".br\n";
        out << roff_escape(line) << "\n";
        first = false;
    }
}

}  // namespace

std::string roff_escape(const std::string& text) {
    std::string out;
    bool line_start = true;
    for (char c : text) {
        if (line_start && (c == '.' || c == '\'')) out += "\\&";
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
        line_start = c == '\n';
    }
    return out;
}

std::string man_page(const CLI::App& app, const ManInfo& info) {
    std::ostringstream out;
    std::string name = app.get_name();
    std::string upper = name;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    out << ".TH " << upper << " " << info.section << " \"\" \"" << roff_escape(info.version) << "\"\n";
    out << ".SH NAME\n" << name << " \\- ";
    // The app's description is "name: what it does"; the NAME line wants only the latter.
    std::string desc = app.get_description();
    if (auto colon = desc.find(": "); colon != std::string::npos && desc.compare(0, colon, name) == 0) desc = desc.substr(colon + 2);
    out << roff_escape(desc) << "\n";
    auto subs = subcommands(app);
    out << ".SH SYNOPSIS\n\\fB" << name << "\\fR [\\fIOPTIONS\\fR]" << (subs.empty() ? "" : " \\fICOMMAND\\fR [\\fIARGS\\fR]")
        << "\n";
    if (!info.description.empty()) out << ".SH DESCRIPTION\n", paragraphs(out, info.description);
    out << ".SH OPTIONS\n";
    option_items(out, app);
    if (!subs.empty()) {
        out << ".SH COMMANDS\n";
        for (auto* s : subs) {
            out << ".SS \"" << s->get_name();
            for (auto* p : positionals(*s)) out << " " << (p->get_required() ? "" : "[") << p->get_name() << (p->get_required() ? "" : "]");
            out << "\"\n" << roff_escape(s->get_description()) << "\n";
            option_items(out, *s);
            if (!s->get_footer().empty()) out << ".PP\n", paragraphs(out, s->get_footer());
        }
    }
    if (!info.exit_status.empty()) out << ".SH \"EXIT STATUS\"\n", paragraphs(out, info.exit_status);
    if (!info.environment.empty()) out << ".SH ENVIRONMENT\n", paragraphs(out, info.environment);
    if (!info.files.empty()) out << ".SH FILES\n", paragraphs(out, info.files);
    if (!info.see_also.empty()) out << ".SH \"SEE ALSO\"\n" << roff_escape(info.see_also) << "\n";
    return out.str();
}

std::string bash_completion(const CLI::App& app, const std::string& names_command) {
    auto words = [](const CLI::App& a) {
        std::string s;
        for (auto* o : named_options(a)) {
            for (auto& n : o->get_lnames()) s += (s.empty() ? "" : " ") + std::string("--") + n;
            for (auto& n : o->get_snames()) s += (s.empty() ? "" : " ") + std::string("-") + n;
        }
        return s;
    };
    std::string name = app.get_name();
    std::string fn = "_" + name;
    std::replace(fn.begin(), fn.end(), '-', '_');
    // An option's own spelling(s) as a bash case pattern under a command: "create:--backend".
    auto patterns = [](const std::string& cmd, const CLI::Option& o) {
        std::string s;
        for (auto& n : o.get_lnames()) s += (s.empty() ? "" : "|") + cmd + ":--" + n;
        for (auto& n : o.get_snames()) s += (s.empty() ? "" : "|") + cmd + ":-" + n;
        return s;
    };
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (auto& w : v) s += (s.empty() ? "" : " ") + w;
        return s;
    };
    std::ostringstream out;
    out << "# bash completion for " << name << " (generated by `" << name << " completion bash`)\n"
        << fn << "() {\n"
        << "    local cur=${COMP_WORDS[COMP_CWORD]} prev= cmd= i\n"
        << "    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
        << "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
        << "        case ${COMP_WORDS[i]} in -*) ;; *) cmd=${COMP_WORDS[i]}; break ;; esac\n"
        << "    done\n"
        << "    # The value of an option: its allowed values, or nothing to offer (sizes, paths).\n"
        << "    case $cmd:$prev in\n";
    std::string free_values;
    auto value_cases = [&](const std::string& cmd, const CLI::App& a) {
        for (auto* o : named_options(a)) {
            if (!takes_value(*o)) continue;
            const std::string pat = patterns(cmd, *o);
            if (pat.empty()) continue;
            if (auto v = member_values(*o); !v.empty())
                out << "        " << pat << ") COMPREPLY=($(compgen -W \"" << join(v) << "\" -- \"$cur\")); return ;;\n";
            else
                free_values += (free_values.empty() ? "" : "|") + pat;
        }
    };
    value_cases("", app);
    for (auto* s : subcommands(app)) value_cases(s->get_name(), *s);
    if (!free_values.empty()) out << "        " << free_values << ") COMPREPLY=(); return ;;\n";
    out << "    esac\n"
        << "    local words\n"
        << "    case $cmd in\n";
    std::string cmds;
    for (auto* s : subcommands(app)) {
        cmds += (cmds.empty() ? "" : " ") + s->get_name();
        auto pos = positionals(*s);
        bool takes_name = !names_command.empty() && !pos.empty() && pos.front()->get_name() == "name";
        std::string values;  // a positional with a fixed set of values (completion's shell)
        for (auto* p : pos)
            for (auto& v : member_values(*p)) values += " " + v;
        out << "        " << s->get_name() << ") words=\"" << words(*s) << values
            << (takes_name ? " $(" + names_command + " 2>/dev/null)" : "") << "\" ;;\n";
    }
    out << "        *) words=\"" << cmds << " " << words(app) << "\" ;;\n"
        << "    esac\n"
        << "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
        << "}\n"
        << "complete -F " << fn << " " << name << "\n";
    return out.str();
}

std::string render_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> w;
    for (auto& r : rows)
        for (size_t i = 0; i < r.size(); i++) {
            if (w.size() <= i) w.push_back(0);
            w[i] = std::max(w[i], r[i].size());
        }
    std::string out;
    for (auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); i++) {
            line += r[i];
            if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
        }
        line.erase(line.find_last_not_of(' ') + 1);  // empty trailing cells leave no padding
        out += line + "\n";
    }
    return out;
}

std::string nearest(const std::string& word, const std::vector<std::string>& candidates) {
    // Edit distance with a swap of two neighbours as one edit (optimal string alignment): the
    // typos people make ("lsit") are one edit away.
    auto distance = [](const std::string& a, const std::string& b) {
        std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
        for (size_t i = 0; i <= a.size(); i++) d[i][0] = i;
        for (size_t j = 0; j <= b.size(); j++) d[0][j] = j;
        for (size_t i = 1; i <= a.size(); i++)
            for (size_t j = 1; j <= b.size(); j++) {
                d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                    d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
            }
        return d[a.size()][b.size()];
    };
    std::string best;
    size_t best_d = std::max<size_t>(1, word.size() / 3) + 1;  // more edits than that: another word, not a typo
    for (const auto& c : candidates) {
        const size_t d = distance(word, c);
        if (d < best_d) best_d = d, best = c;
    }
    return best;
}

std::string suggestion(const CLI::App& app, int argc, const char* const* argv) {
    const CLI::App* sub = nullptr;
    std::vector<std::string> names;
    for (const auto* s : subcommands(app)) names.push_back(s->get_name());
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        if (a.starts_with("-")) continue;
        if (!sub) {
            for (const auto* s : subcommands(app))
                if (s->get_name() == a) sub = s;
            if (!sub) {
                const std::string n = nearest(a, names);
                return n.empty() ? "" : app.get_name() + ": unknown command '" + a + "'; did you mean '" + n + "'?";
            }
        }
    }
    if (!sub) return "";
    std::vector<std::string> opts;
    for (const auto* apps : {sub, &app})
        for (const auto* o : named_options(*apps))
            for (const auto& l : o->get_lnames()) opts.push_back("--" + l);
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (!a.starts_with("--")) continue;
        a = a.substr(0, a.find('='));
        if (std::find(opts.begin(), opts.end(), a) != opts.end()) continue;
        const std::string n = nearest(a, opts);
        if (!n.empty()) return app.get_name() + ": unknown option '" + a + "'; did you mean '" + n + "'?";
    }
    return "";
}

}  // namespace hostd
