// Writes the tenant unit template for the default paths, with the PostgreSQL binaries' directory
// given: the build makes the installed hostd-postgres@.service with it, so the shipped file is
// what render_tenant_template() gives for the defaults. Replaced atomically: a failed run leaves
// no half-written file for the next build to take as up to date.

#include <iostream>

#include "base/error.h"
#include "base/fs.h"
#include "units/template.h"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: " << argv[0] << " PG_BINDIR OUTPUT\n";
        return 2;
    }
    try {
        hostd::units::TemplatePaths paths;
        paths.pg_bindir = argv[1];
        hostd::write_file_replace(argv[2], hostd::units::render_tenant_template(paths));
        return 0;
    } catch (const hostd::Error& e) {
        std::cerr << argv[0] << ": " << e.what() << "\n";
        return 1;
    }
}
