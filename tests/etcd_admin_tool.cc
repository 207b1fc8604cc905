// hostd-etcd-admin: hostd's etcd admin client (hostd/etcd_admin.h) and its certificates from the
// command line, for tests/e2e/ha-hostd and tests/e2e/ha (run inside a machine, as root, with
// hostd's root certificate for etcd). Not installed.
//   hostd-etcd-admin --endpoint URL... --cert F --key F --ca F ensure|grant T|revoke T|remove T
//   hostd-etcd-admin tenant-cert T --ca-dir D --out PREFIX   (PREFIX.crt, PREFIX.key: the member's)
//   hostd-etcd-admin root-cert --ca-dir D --out PREFIX       (hostd's own, CN root)
#include <CLI/CLI.hpp>
#include <iostream>

#include "base/error.h"
#include "base/fs.h"
#include "hostd/etcd_admin.h"

int main(int argc, char** argv) {
    CLI::App app{"hostd-etcd-admin: hostd's etcd admin client"};
    app.require_subcommand(1);
    hostd::EtcdAdminOptions o;
    app.add_option("--endpoint", o.endpoints, "an etcd client URL (https://addr:port), tried in order");
    app.add_option("--cert", o.cert, "hostd's client certificate for etcd (CN root)");
    app.add_option("--key", o.key);
    app.add_option("--ca", o.ca, "the CA of etcd's certificate");
    std::string tenant, ca_dir, out;
    auto* ensure = app.add_subcommand("ensure", "auth on, as hostd wants it");
    auto* grant = app.add_subcommand("grant", "a tenant's user and role");
    grant->add_option("tenant", tenant)->required();
    auto* revoke = app.add_subcommand("revoke", "a tenant's user and role gone");
    revoke->add_option("tenant", tenant)->required();
    auto* remove = app.add_subcommand("remove", "a tenant's Patroni scope's keys gone");
    remove->add_option("tenant", tenant)->required();
    auto* tenant_cert = app.add_subcommand("tenant-cert", "a tenant member's client certificate for etcd");
    tenant_cert->add_option("tenant", tenant)->required();
    auto* root_cert = app.add_subcommand("root-cert", "hostd's client certificate for etcd");
    for (auto* c : {tenant_cert, root_cert}) {
        c->add_option("--ca-dir", ca_dir, "where ca.crt and ca.key are")->required();
        c->add_option("--out", out, "PREFIX: PREFIX.crt and PREFIX.key are written")->required();
    }
    CLI11_PARSE(app, argc, argv);
    try {
        if (*tenant_cert || *root_cert) {
            const hostd::pgconf::CaPaths ca{.cert = ca_dir + "/ca.crt", .key = ca_dir + "/ca.key"};
            const auto pair = *tenant_cert ? hostd::issue_etcd_tenant_cert(ca, tenant) : hostd::issue_etcd_root_cert(ca);
            hostd::write_file_atomic(out + ".key", pair.key_pem, 0600);
            hostd::write_file_atomic(out + ".crt", pair.cert_pem, 0644);
            return 0;
        }
        auto admin = hostd::make_real_etcd_admin(o);
        if (*ensure) admin->ensure_auth();
        if (*grant) admin->grant_tenant(tenant);
        if (*revoke) admin->revoke_tenant(tenant);
        if (*remove) admin->remove_scope(tenant);
    } catch (const std::exception& e) {
        std::cerr << "hostd-etcd-admin: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
