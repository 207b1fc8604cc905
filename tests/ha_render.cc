// ha_render: prints what the ha/ library renders, for tests/e2e/ha (which sets the units up itself
// until hostd's create flow does). Not installed.
//   ha_render etcd --name N --address A --member NAME=ADDR... [--data-dir D]
//                  --cert F --key F --peer-cert F --peer-key F --ca F
//   ha_render endpoints ADDR...
//   ha_render patroni --scope S --name N --address A --rest-port P --pg-port P --etcd ADDR...
//                     --data-dir D --socket-dir D --pgpass F --member ADDR...
//                     --superuser-password-file F --replication-password-file F
//                     --rewind-password-file F [--rest-password-file F] [--synchronous [--synchronous-strict]] [--ttl S --loop-wait S --retry-timeout S]
//                     --tls-cert F --tls-key F --tls-ca F --etcd-cert F --etcd-key F
//                     [--param NAME=VALUE]... [--global-param NAME=VALUE]... [--etcd-api v2|v3]
//   ha_render haproxy --tenant T --bind A --port P --member NAME=HOST:PGPORT:RESTPORT... [--replica]
//   ha_render cluster --member NAME...    (Patroni's GET /cluster on stdin: "NAME ROLE SYNC STATE LAG" per member)
//   ha_render switchover --member NAME... [--to NAME] [--synchronous]   (/cluster on stdin: "LEADER CANDIDATE")
#include <CLI/CLI.hpp>
#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/error.h"
#include "ha/ha.h"
#include "ha/plan.h"

namespace {

std::string read_secret(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw hostd::Error(hostd::Errc::not_found, "cannot read " + path);
    std::string s;
    std::getline(in, s);
    return s;
}

std::pair<std::string, std::string> split_eq(const std::string& v) {
    auto p = v.find('=');
    if (p == std::string::npos) throw hostd::Error(hostd::Errc::invalid, "expected NAME=VALUE, got " + v);
    return {v.substr(0, p), v.substr(p + 1)};
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ha_render: the ha/ library's files"};
    app.require_subcommand(1);

    hostd::ha::EtcdMember em;
    std::vector<std::string> em_members;
    auto* etcd = app.add_subcommand("etcd", "an etcd member's config file");
    etcd->add_option("--name", em.name)->required();
    etcd->add_option("--address", em.address)->required();
    etcd->add_option("--member", em_members)->required();
    etcd->add_option("--data-dir", em.data_dir);
    etcd->add_option("--cert", em.client_tls.cert_file, "etcd's certificate for clients (names the address and 127.0.0.1)")->required();
    etcd->add_option("--key", em.client_tls.key_file)->required();
    etcd->add_option("--peer-cert", em.peer_tls.cert_file, "its peer certificate (CN hostd:etcd-peer)")->required();
    etcd->add_option("--peer-key", em.peer_tls.key_file)->required();
    std::string em_ca;
    etcd->add_option("--ca", em_ca, "the CA of clients' and peers' certificates")->required();

    std::vector<std::string> ep_addrs;
    auto* endpoints = app.add_subcommand("endpoints", "etcd client endpoints");
    endpoints->add_option("addr", ep_addrs)->required();

    hostd::ha::PatroniMember pm;
    std::string address, su_file, repl_file, rewind_file, rest_file;
    uint16_t rest_port = 0;
    std::vector<std::string> pm_etcd, pm_members;
    auto* patroni = app.add_subcommand("patroni", "a member's patroni.yml");
    patroni->add_option("--scope", pm.scope)->required();
    patroni->add_option("--name", pm.name)->required();
    patroni->add_option("--address", address)->required();
    patroni->add_option("--rest-port", rest_port)->required();
    patroni->add_option("--pg-port", pm.pg_port)->required();
    patroni->add_option("--etcd", pm_etcd)->required();
    patroni->add_option("--data-dir", pm.data_dir)->required();
    patroni->add_option("--socket-dir", pm.socket_dir)->required();
    patroni->add_option("--pgpass", pm.pgpass)->required();
    patroni->add_option("--member", pm_members)->required();
    patroni->add_option("--superuser-password-file", su_file)->required();
    patroni->add_option("--replication-password-file", repl_file)->required();
    patroni->add_option("--rewind-password-file", rewind_file)->required();
    patroni->add_option("--rest-password-file", rest_file, "basic auth (user hostd) on the REST API's unsafe verbs");
    patroni->add_flag("--synchronous", pm.synchronous_mode);
    patroni->add_flag("--synchronous-strict", pm.synchronous_mode_strict);
    patroni->add_option("--ttl", pm.timing.ttl);
    patroni->add_option("--loop-wait", pm.timing.loop_wait);
    patroni->add_option("--retry-timeout", pm.timing.retry_timeout);
    patroni->add_option("--tls-cert", pm.tls.cert_file, "the member's server certificate")->required();
    patroni->add_option("--tls-key", pm.tls.key_file, "its key")->required();
    patroni->add_option("--tls-ca", pm.tls.ca_file, "the CA of the members' certificates (and of etcd's)")->required();
    patroni->add_option("--etcd-cert", pm.etcd_tls.cert_file, "the member's client certificate for etcd")->required();
    patroni->add_option("--etcd-key", pm.etcd_tls.key_file)->required();
    std::vector<std::string> pm_params, pm_globals;
    patroni->add_option("--param", pm_params, "a postgresql.conf setting, NAME=VALUE");
    patroni->add_option("--global-param", pm_globals, "a setting of the whole scope (bootstrap.dcs), NAME=VALUE");
    std::string etcd_api = "v2";
    patroni->add_option("--etcd-api", etcd_api, "Patroni's etcd client: v2 (etcd, the default) or v3 (etcd3)")
        ->check(CLI::IsMember({"v2", "v3"}));

    hostd::ha::HaRoute hr;
    std::vector<std::string> hr_members;
    bool replica = false;
    auto* haproxy = app.add_subcommand("haproxy", "an HA tenant's HAProxy listener");
    haproxy->add_option("--tenant", hr.tenant)->required();
    haproxy->add_option("--bind", hr.bind_address)->required();
    haproxy->add_option("--port", hr.public_port)->required();
    haproxy->add_option("--member", hr_members)->required();
    haproxy->add_flag("--replica", replica);

    std::vector<std::string> cl_members;
    auto* cluster = app.add_subcommand("cluster", "Patroni's /cluster (stdin) as hostd reads it");
    cluster->add_option("--member", cl_members, "a member hostd expects (missing ones are down)");
    std::string sw_to;
    bool sw_sync = false;
    auto* switchover = app.add_subcommand("switchover", "the switchover hostd would ask for, from /cluster (stdin)");
    switchover->add_option("--member", cl_members, "a member hostd expects");
    switchover->add_option("--to", sw_to, "the member asked for");
    switchover->add_flag("--synchronous", sw_sync, "the tenant runs synchronous mode");

    CLI11_PARSE(app, argc, argv);
    try {
        if (*etcd) {
            for (const auto& m : em_members) em.initial_cluster.insert(split_eq(m));
            em.client_tls.ca_file = em.peer_tls.ca_file = em_ca;
            std::cout << hostd::ha::render_etcd(em);
        } else if (*endpoints) {
            std::vector<hostd::ha::HostPort> eps;
            for (const auto& a : ep_addrs) eps.push_back({a, 2379});
            std::cout << hostd::ha::etcd_endpoints(eps) << "\n";
        } else if (*patroni) {
            pm.restapi_listen = {address, rest_port};
            pm.connect_address = address;
            pm.etcd_tls.ca_file = pm.tls.ca_file;
            pm.etcd_api = etcd_api == "v3" ? hostd::ha::EtcdApi::v3 : hostd::ha::EtcdApi::v2;
            for (const auto& a : pm_etcd) pm.etcd.push_back({a, 2379});
            pm.listen_addresses = {address, "127.0.0.1"};
            pm.superuser = {"postgres", read_secret(su_file)};
            pm.replication = {"replicator", read_secret(repl_file)};
            pm.rewind = {"rewinder", read_secret(rewind_file)};
            if (!rest_file.empty()) pm.rest = {"hostd", read_secret(rest_file)};
            for (const auto& p : pm_params) pm.parameters.insert(split_eq(p));
            for (const auto& p : pm_globals) pm.global_parameters.insert(split_eq(p));
            pm.pg_hba = hostd::ha::member_hba(pm_members, pm.replication.username);
            std::cout << hostd::ha::render_patroni(pm);
        } else if (*haproxy) {
            hr.role = replica ? hostd::ha::Role::replica : hostd::ha::Role::primary;
            for (const auto& m : hr_members) {
                auto [name, rest] = split_eq(m);
                std::istringstream in(rest);
                std::string host, pg, api;
                std::getline(in, host, ':');
                std::getline(in, pg, ':');
                std::getline(in, api, ':');
                hr.members.push_back({name, host, static_cast<uint16_t>(std::stoi(pg)), static_cast<uint16_t>(std::stoi(api))});
            }
            std::cout << hostd::ha::render_haproxy(hr);
        } else if (*cluster || *switchover) {
            std::ostringstream body;
            body << std::cin.rdbuf();
            const auto view = hostd::ha::parse_cluster(body.str(), cl_members);
            if (*cluster) {
                for (auto m : view.members) {
                    std::replace(m.state.begin(), m.state.end(), ' ', '_');  // one word a column
                    std::cout << m.name << " " << hostd::ha::member_role_name(m.role) << " " << (m.sync ? "sync" : "async")
                              << " " << (m.state.empty() ? "-" : m.state) << " "
                              << (m.lag_bytes ? std::to_string(*m.lag_bytes) : std::string("-")) << "\n";
                }
            } else {
                auto s = hostd::ha::plan_switchover(view, sw_to.empty() ? std::nullopt : std::optional<std::string>(sw_to), sw_sync);
                std::cout << s.leader << " " << s.candidate << "\n";
            }
        }
    } catch (const std::exception& e) {
        std::cerr << "ha_render: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
