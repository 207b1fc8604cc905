// hostd's local CA and tenant server certificates: checked with OpenSSL's own verifier, with
// the `openssl` command line, and (TlsRoot, root + Debian's PostgreSQL 15) by psql connecting
// with sslmode=verify-full to a throwaway cluster run as the `postgres` user. Every test works
// in its own temporary directory under /var/tmp and removes it.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>

#include "base/error.h"
#include "base/exec.h"
#include "base/fd.h"
#include "base/fs.h"
#include "pgconf/pgconf.h"
#include "pgconf/tls.h"

using namespace hostd;
using namespace hostd::pgconf;
namespace fs = std::filesystem;

namespace {

const std::string kBindir = "/usr/lib/postgresql/15/bin";

template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Store = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using StoreCtx = std::unique_ptr<X509_STORE_CTX, Deleter<X509_STORE_CTX_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using BasicConstraints = std::unique_ptr<BASIC_CONSTRAINTS, Deleter<BASIC_CONSTRAINTS_free>>;
using ExtKeyUsage = std::unique_ptr<EXTENDED_KEY_USAGE, Deleter<EXTENDED_KEY_USAGE_free>>;

Cert parse_cert(const std::string& pem) {
    Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Cert x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    if (!x) throw std::runtime_error("not a PEM certificate");
    return x;
}

Pkey parse_key(const std::string& pem) {
    Bio b(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    Pkey k(PEM_read_bio_PrivateKey(b.get(), nullptr, nullptr, nullptr));
    if (!k) throw std::runtime_error("not a PEM private key");
    return k;
}

// What a certificate says, read with OpenSSL directly rather than through hostd's own code.

// The subjectAltName entries in order, addresses in inet_ntop's form: "127.0.0.1", "::1", "db.example.com".
std::vector<std::string> san_names(const X509* x) {
    using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
    GeneralNames gens(static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
    std::vector<std::string> out;
    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens.get()); i++) {
        int type = 0;
        const void* value = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens.get(), i), &type);
        if (type != GEN_DNS && type != GEN_IPADD) {  // hostd writes no other kind
            out.push_back("<GENERAL_NAME type " + std::to_string(type) + ">");
            continue;
        }
        const auto* s = static_cast<const ASN1_STRING*>(value);
        const unsigned char* data = ASN1_STRING_get0_data(s);
        const auto len = static_cast<size_t>(ASN1_STRING_length(s));
        char text[INET6_ADDRSTRLEN];
        if (type == GEN_DNS) out.emplace_back(reinterpret_cast<const char*>(data), len);
        else if ((len == 4 || len == 16) && ::inet_ntop(len == 4 ? AF_INET : AF_INET6, data, text, sizeof text))
            out.emplace_back(text);
        else out.emplace_back("<bad address>");
    }
    return out;
}

std::string common_name(const X509_NAME* name) {
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return {};
    unsigned char* utf8 = nullptr;
    int n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
    if (n < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(n));
    OPENSSL_free(utf8);
    return out;
}

// Whole days from now until notAfter.
int days_left(const X509* x) {
    int days = 0, secs = 0;
    EXPECT_EQ(ASN1_TIME_diff(&days, &secs, nullptr, X509_get0_notAfter(x)), 1);
    return days;
}

// X509_verify_cert against ca_pem for purpose sslserver; with host or ip, also checks the name.
// Returns X509_V_OK or the verification error.
int verify(const std::string& ca_pem, const std::string& cert_pem, const std::string& host = {},
           const std::string& ip = {}, int purpose = X509_PURPOSE_SSL_SERVER) {
    Cert ca = parse_cert(ca_pem);
    Cert leaf = parse_cert(cert_pem);
    Store store(X509_STORE_new());
    EXPECT_EQ(X509_STORE_add_cert(store.get(), ca.get()), 1);
    StoreCtx ctx(X509_STORE_CTX_new());
    EXPECT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), nullptr), 1);
    EXPECT_EQ(X509_STORE_CTX_set_purpose(ctx.get(), purpose), 1);
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    if (!host.empty()) {
        EXPECT_EQ(X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()), 1);
    }
    if (!ip.empty()) {
        EXPECT_EQ(X509_VERIFY_PARAM_set1_ip_asc(param, ip.c_str()), 1);
    }
    if (X509_verify_cert(ctx.get()) == 1) return X509_V_OK;
    return X509_STORE_CTX_get_error(ctx.get());
}

// A directory of the test's own under /var/tmp, removed whatever happens.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/var/tmp/hostd-pgconf-tls.XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno(errno, "mkdtemp");
        path = tmpl;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    CaPaths ca() const { return {path + "/ca/ca.crt", path + "/ca/ca.key"}; }
    std::string path;
};

mode_t file_mode(const std::string& path) {
    struct stat st{};
    if (::stat(path.c_str(), &st) < 0) return 0;
    return st.st_mode & 07777;
}

ServerCertRequest acme_request() {
    return {.tenant = "acme", .names = {"127.0.0.1", "::1", "db.example.com", "acme.pg.example.net"}};
}

bool have_openssl_cli() { return path_exists("/usr/bin/openssl"); }

}  // namespace

// --- The CA ---------------------------------------------------------------------------------

TEST(EnsureCa, CreatesTheCaOnceAndReloadsItAfterwards) {
    TempDir t;
    const CaPaths ca = t.ca();
    ensure_ca(ca);
    ASSERT_TRUE(path_exists(ca.cert));
    ASSERT_TRUE(path_exists(ca.key));
    EXPECT_EQ(file_mode(ca.key), 0600u);
    EXPECT_EQ(file_mode(ca.cert), 0644u);
    EXPECT_EQ(file_mode(t.path + "/ca"), 0700u);  // the directory it had to create

    const std::string cert = read_file(ca.cert), key = read_file(ca.key);
    ensure_ca(ca);
    EXPECT_EQ(read_file(ca.cert), cert);
    EXPECT_EQ(read_file(ca.key), key);
    EXPECT_EQ(ca_certificate_pem(ca), cert);
}

TEST(EnsureCa, MakesASelfSignedP256CaForTenYears) {
    TempDir t;
    ensure_ca(t.ca());
    const std::string pem = ca_certificate_pem(t.ca());
    Cert x = parse_cert(pem);

    const std::string subject = common_name(X509_get_subject_name(x.get()));
    EXPECT_EQ(subject.rfind("hostd local CA ", 0), 0u) << subject;
    EXPECT_EQ(common_name(X509_get_issuer_name(x.get())), subject);
    EXPECT_GE(days_left(x.get()), 3649);
    EXPECT_LE(days_left(x.get()), 3650);
    EXPECT_TRUE(san_names(x.get()).empty());

    EXPECT_EQ(X509_check_ca(x.get()), 1);
    int crit = -1;
    BasicConstraints bc(static_cast<BASIC_CONSTRAINTS*>(X509_get_ext_d2i(x.get(), NID_basic_constraints, &crit, nullptr)));
    ASSERT_TRUE(bc);
    EXPECT_TRUE(bc->ca);
    EXPECT_EQ(crit, 1);
    EXPECT_EQ(X509_get_key_usage(x.get()), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
    ASSERT_GE(X509_get_ext_by_NID(x.get(), NID_key_usage, -1), 0);
    EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(x.get(), X509_get_ext_by_NID(x.get(), NID_key_usage, -1))), 1);
    EXPECT_EQ(X509_verify(x.get(), X509_get0_pubkey(x.get())), 1);  // self-signed
    EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);

    Pkey key = parse_key(read_file(t.ca().key));
    EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
    char group[64] = {};
    size_t len = 0;
    ASSERT_EQ(EVP_PKEY_get_group_name(key.get(), group, sizeof group, &len), 1);
    EXPECT_STREQ(group, "prime256v1");
}

TEST(EnsureCa, RefusesAHalfPresentCaAndLeavesItAlone) {
    TempDir t;
    const CaPaths ca = t.ca();
    ensure_ca(ca);
    const std::string cert = read_file(ca.cert);
    ASSERT_TRUE(remove_file(ca.key));
    try {
        ensure_ca(ca);
        FAIL() << "a CA without its key was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::failed);
        EXPECT_NE(std::string(e.what()).find(ca.key), std::string::npos) << e.what();
    }
    EXPECT_EQ(read_file(ca.cert), cert);
    EXPECT_FALSE(path_exists(ca.key));

    TempDir t2;
    const CaPaths ca2 = t2.ca();
    ensure_ca(ca2);
    ASSERT_TRUE(remove_file(ca2.cert));
    EXPECT_THROW(ensure_ca(ca2), Error);
    EXPECT_FALSE(path_exists(ca2.cert));
}

TEST(EnsureCa, RefusesAKeyThatIsNotTheCertificatesKey) {
    TempDir a, b;
    ensure_ca(a.ca());
    ensure_ca(b.ca());
    write_file_atomic(a.ca().key, read_file(b.ca().key), 0600);
    try {
        ensure_ca(a.ca());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::failed);
        EXPECT_NE(std::string(e.what()).find("does not belong"), std::string::npos) << e.what();
    }
}

TEST(EnsureCa, RefusesFilesThatAreNotPem) {
    TempDir t;
    make_dirs(t.path + "/ca", 0700);
    write_file_atomic(t.ca().cert, "not a certificate\n");
    write_file_atomic(t.ca().key, "not a key\n", 0600);
    EXPECT_THROW(ensure_ca(t.ca()), Error);
}

// --- Server certificates --------------------------------------------------------------------

TEST(IssueServerCert, VerifiesAgainstTheCaForSslServer) {
    TempDir t;
    ensure_ca(t.ca());
    PemPair pair = issue_server_cert(t.ca(), acme_request());
    const std::string ca_pem = ca_certificate_pem(t.ca());

    EXPECT_EQ(verify(ca_pem, pair.cert_pem), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, pair.cert_pem, "db.example.com"), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, pair.cert_pem, "ACME.pg.example.net"), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, pair.cert_pem, {}, "127.0.0.1"), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, pair.cert_pem, {}, "::1"), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, pair.cert_pem, "wrong.example"), X509_V_ERR_HOSTNAME_MISMATCH);
    EXPECT_EQ(verify(ca_pem, pair.cert_pem, {}, "127.0.0.2"), X509_V_ERR_IP_ADDRESS_MISMATCH);

    TempDir other;
    ensure_ca(other.ca());
    EXPECT_NE(verify(ca_certificate_pem(other.ca()), pair.cert_pem), X509_V_OK);
}

TEST(IssueServerCert, CarriesTheNamesKeyAndExtensionsAsked) {
    TempDir t;
    ensure_ca(t.ca());
    PemPair pair = issue_server_cert(t.ca(), acme_request());
    Cert x = parse_cert(pair.cert_pem);
    EXPECT_EQ(san_names(x.get()), (std::vector<std::string>{"127.0.0.1", "::1", "db.example.com", "acme.pg.example.net"}));
    EXPECT_EQ(common_name(X509_get_subject_name(x.get())), "acme");
    Cert ca = parse_cert(ca_certificate_pem(t.ca()));
    EXPECT_EQ(common_name(X509_get_issuer_name(x.get())), common_name(X509_get_subject_name(ca.get())));
    EXPECT_GE(days_left(x.get()), 824);
    EXPECT_LE(days_left(x.get()), 825);

    Pkey key = parse_key(pair.key_pem);
    EXPECT_EQ(X509_check_private_key(x.get(), key.get()), 1);
    EXPECT_EQ(EVP_PKEY_get_base_id(key.get()), EVP_PKEY_EC);
    EXPECT_EQ(EVP_PKEY_get_bits(key.get()), 256);
    EXPECT_NE(pair.key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(X509_get_signature_nid(x.get()), NID_ecdsa_with_SHA256);
    EXPECT_EQ(X509_get_version(x.get()), X509_VERSION_3);
    EXPECT_EQ(X509_check_ca(x.get()), 0);
    EXPECT_EQ(X509_get_key_usage(x.get()), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
    EXPECT_EQ(X509_get_extended_key_usage(x.get()), static_cast<uint32_t>(XKU_SSL_SERVER));
    EXPECT_NE(X509_get0_subject_key_id(x.get()), nullptr);
    EXPECT_NE(X509_get0_authority_key_id(x.get()), nullptr);
    EXPECT_EQ(X509_cmp_time(X509_get0_notBefore(x.get()), nullptr), -1);  // already valid

    // A random positive serial of about 128 bits, different each time.
    Bignum serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr));
    EXPECT_FALSE(BN_is_negative(serial.get()));
    EXPECT_GT(BN_num_bits(serial.get()), 100);
    EXPECT_LE(BN_num_bits(serial.get()), 128);
    Cert y = parse_cert(issue_server_cert(t.ca(), acme_request()).cert_pem);
    EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(x.get()), X509_get0_serialNumber(y.get())), 0);
}

TEST(IssueServerCert, WritesNamesInTheirCanonicalFormOnce) {
    TempDir t;
    ensure_ca(t.ca());
    PemPair pair = issue_server_cert(
        t.ca(), {.tenant = "t1", .names = {"DB.Example.COM.", "[::1]", "0:0:0:0:0:0:0:1", "db.example.com", "*.pg.example.net"}});
    EXPECT_EQ(san_names(parse_cert(pair.cert_pem).get()),
              (std::vector<std::string>{"db.example.com", "::1", "*.pg.example.net"}));
    EXPECT_EQ(verify(ca_certificate_pem(t.ca()), pair.cert_pem, "t1.pg.example.net"), X509_V_OK);
}

TEST(IssueServerCert, RefusesBadRequestsNamingTheField) {
    TempDir t;
    ensure_ca(t.ca());
    auto field_of = [&](const ServerCertRequest& r) -> std::string {
        try {
            issue_server_cert(t.ca(), r);
        } catch (const Error& e) {
            EXPECT_EQ(e.code(), Errc::invalid) << e.what();
            return e.field();
        }
        return "<accepted>";
    };
    EXPECT_EQ(field_of({.tenant = "acme", .names = {}}), "names");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {"db example.com"}}), "names");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {"300.1.1.1"}}), "names");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {"-bad.example.com"}}), "names");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {"fe80::1%eth0"}}), "names");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {""}}), "names");
    EXPECT_EQ(field_of({.tenant = "", .names = {"127.0.0.1"}}), "tenant");
    EXPECT_EQ(field_of({.tenant = std::string(65, 'a'), .names = {"127.0.0.1"}}), "tenant");
    EXPECT_EQ(field_of({.tenant = "a\nb", .names = {"127.0.0.1"}}), "tenant");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {"127.0.0.1"}, .days = 0}), "days");
    EXPECT_EQ(field_of({.tenant = "acme", .names = {"127.0.0.1"}, .days = 3651}), "days");
}

TEST(IssueCert, MakesClientOnlyAndHostCertificatesWithTheirUsagesOnly) {
    TempDir t;
    ensure_ca(t.ca());
    const std::string ca_pem = ca_certificate_pem(t.ca());
    // A tenant's repository client: no names, a client only.
    PemPair client = issue_cert(t.ca(), {.cn = "acme@host-1", .server = false, .client = true});
    EXPECT_EQ(common_name(X509_get_subject_name(parse_cert(client.cert_pem).get())), "acme@host-1");
    EXPECT_EQ(verify(ca_pem, client.cert_pem, {}, {}, X509_PURPOSE_SSL_CLIENT), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, client.cert_pem), X509_V_ERR_INVALID_PURPOSE);
    // A tenant's server certificate cannot act as a client.
    EXPECT_EQ(verify(ca_pem, issue_server_cert(t.ca(), acme_request()).cert_pem, {}, {}, X509_PURPOSE_SSL_CLIENT),
              X509_V_ERR_INVALID_PURPOSE);
    // A host: both, by its address.
    PemPair host = issue_cert(t.ca(), {.cn = "hostd@host-1", .names = {"10.231.1.2"}, .server = true, .client = true});
    EXPECT_EQ(verify(ca_pem, host.cert_pem, {}, "10.231.1.2"), X509_V_OK);
    EXPECT_EQ(verify(ca_pem, host.cert_pem, {}, {}, X509_PURPOSE_SSL_CLIENT), X509_V_OK);

    auto field_of = [&](const CertRequest& r) -> std::string {
        try {
            issue_cert(t.ca(), r);
        } catch (const Error& e) {
            return e.field();
        }
        return "accepted";
    };
    EXPECT_EQ(field_of({.cn = "", .server = false, .client = true}), "cn");
    EXPECT_EQ(field_of({.cn = "a\nb", .server = false, .client = true}), "cn");
    EXPECT_EQ(field_of({.cn = "x", .server = true}), "names");
    EXPECT_EQ(field_of({.cn = "x", .server = false, .client = false}), "usage");
}

TEST(IssueServerCert, ReportsAMissingCaAsNotFound) {
    TempDir t;
    try {
        issue_server_cert(t.ca(), acme_request());
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.code(), Errc::not_found) << e.what();
    }
    EXPECT_FALSE(path_exists(t.ca().cert));  // issuing never creates a CA
}

// --- The openssl command line agrees --------------------------------------------------------

TEST(IssueServerCert, PassesOpensslVerifyAndShowsItsNames) {
    if (!have_openssl_cli()) GTEST_SKIP() << "needs /usr/bin/openssl";
    TempDir t;
    ensure_ca(t.ca());
    PemPair pair = issue_server_cert(t.ca(), acme_request());
    const std::string cert = t.path + "/cert.pem";
    write_file_atomic(cert, pair.cert_pem);

    auto r = exec({.argv = {"openssl", "verify", "-CAfile", t.ca().cert, "-purpose", "sslserver", cert}});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.out, cert + ": OK\n");
    r = exec({.argv = {"openssl", "verify", "-CAfile", t.ca().cert, "-purpose", "sslserver", "-verify_hostname",
                       "acme.pg.example.net", cert}});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    r = exec({.argv = {"openssl", "verify", "-CAfile", t.ca().cert, "-purpose", "sslserver", "-verify_ip",
                       "127.0.0.1", cert}});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    r = exec({.argv = {"openssl", "verify", "-CAfile", t.ca().cert, "-purpose", "sslserver", "-verify_hostname",
                       "wrong.example", cert}});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE((r.out + r.err).find("hostname mismatch"), std::string::npos) << r.out << r.err;
    // The CA is not a server certificate, and a certificate does not verify itself.
    r = exec({.argv = {"openssl", "verify", "-CAfile", cert, "-purpose", "sslserver", cert}});
    EXPECT_NE(r.exit_code, 0);

    r = exec({.argv = {"openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("IP Address:127.0.0.1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("IP Address:0:0:0:0:0:0:0:1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("DNS:db.example.com"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("DNS:acme.pg.example.net"), std::string::npos) << r.out;

    r = exec({.argv = {"openssl", "x509", "-noout", "-text", "-in", cert}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("CA:FALSE"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("TLS Web Server Authentication"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ecdsa-with-SHA256"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Subject: CN = acme"), std::string::npos) << r.out;

    const std::string key = t.path + "/key.pem";
    write_file_atomic(key, pair.key_pem, 0600);
    r = exec({.argv = {"openssl", "pkey", "-in", key, "-noout", "-check"}});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;

    r = exec({.argv = {"openssl", "x509", "-noout", "-text", "-in", t.ca().cert}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("CA:TRUE"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Certificate Sign, CRL Sign"), std::string::npos) << r.out;
}

// --- A real cluster with ssl=on, and psql with verify-full ---------------------------------

namespace {

bool port_is_free(uint16_t port) {
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

uint16_t free_port() {
    std::mt19937 rng{std::random_device{}()};
    for (int i = 0; i < 200; i++) {
        auto p = static_cast<uint16_t>(28000 + rng() % 2000);
        if (port_is_free(p)) return p;
    }
    throw Error(Errc::unavailable, "No free port in 28000-29999");
}

// A cluster of its own owned by `postgres`, stopped and removed when the test ends.
class TlsScratch {
public:
    TlsScratch() {
        passwd* pw = ::getpwnam("postgres");
        if (!pw) throw Error(Errc::not_found, "No 'postgres' user");
        uid = pw->pw_uid;
        gid = pw->pw_gid;
        char tmpl[] = "/var/tmp/hostd-pgconf-tls-cluster.XXXXXX";
        if (!::mkdtemp(tmpl)) throw_errno(errno, "mkdtemp");
        dir = tmpl;
        if (::chown(dir.c_str(), uid, gid) < 0) throw_errno(errno, "chown");
        pgdata = dir + "/pgdata";
        sockdir = dir + "/sock";
        if (::mkdir(sockdir.c_str(), 0700) < 0 || ::chown(sockdir.c_str(), uid, gid) < 0) throw_errno(errno, "sockdir");
    }
    TlsScratch(const TlsScratch&) = delete;
    TlsScratch& operator=(const TlsScratch&) = delete;
    ~TlsScratch() {
        if (path_exists(pgdata + "/postmaster.pid")) {
            try {
                exec({.argv = {kBindir + "/pg_ctl", "-D", pgdata, "-m", "fast", "-w", "-t", "60", "stop"},
                      .uid = uid, .gid = gid});
            } catch (...) {
            }
        }
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    void start() {
        exec_checked({.argv = {kBindir + "/pg_ctl", "-D", pgdata, "-l", dir + "/postgres.log", "-w", "-t", "60", "start"},
                      .uid = uid, .gid = gid},
                     "pg_ctl start (log: " + dir + "/postgres.log)");
    }
    uid_t uid;
    gid_t gid;
    std::string dir, pgdata, sockdir;
};

}  // namespace

TEST(TlsRoot, PsqlWithVerifyFullTrustsTheTenantByAddressAndNameOnly) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root";
    if (!::getpwnam("postgres")) GTEST_SKIP() << "needs the 'postgres' user";
    if (!path_exists(kBindir + "/initdb")) GTEST_SKIP() << "needs " << kBindir;

    TempDir cadir;
    ensure_ca(cadir.ca());
    TlsScratch s;
    const uint16_t port = free_port();
    const std::string user = "hostd_admin", password = random_password();
    initdb({.bindir = kBindir, .pgdata = s.pgdata, .uid = s.uid, .gid = s.gid, .superuser = user, .password = password},
           {.tenant = "tlstest", .port = port, .socket_dir = s.sockdir, .memory_bytes = 256ull << 20});

    PemPair pair = issue_server_cert(cadir.ca(), {.tenant = "tlstest", .names = {"127.0.0.1", "db.example.com"}});
    const std::string crt = s.pgdata + "/server.crt", key = s.pgdata + "/server.key";
    write_file_atomic(crt, pair.cert_pem, 0644, s.uid, s.gid);
    write_file_atomic(key, pair.key_pem, 0600, s.uid, s.gid);
    // How the tenant's cluster gets TLS is the daemon's business; here the test writes it directly.
    write_file_atomic(s.pgdata + "/hostd.override.conf",
                      "ssl = on\nssl_cert_file = '" + crt + "'\nssl_key_file = '" + key + "'\n", 0600, s.uid, s.gid);
    s.start();
    wait_select1({.host = "127.0.0.1", .port = port, .user = user, .password = password}, std::chrono::seconds(10));

    auto psql = [&](const std::string& target, const std::string& rootcert) {
        const std::string conninfo = target + " port=" + std::to_string(port) + " user=" + user +
                                     " dbname=postgres sslmode=verify-full sslrootcert=" + rootcert +
                                     " connect_timeout=5";
        return exec({.argv = {kBindir + "/psql", "-X", "-At", "-d", conninfo, "-c",
                              "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"},
                     .env = {"PATH=/usr/bin:/bin", "LC_ALL=C.UTF-8", "PGPASSWORD=" + password, "HOME=" + cadir.path},
                     .timeout = std::chrono::seconds(30)});
    };

    auto r = psql("host=127.0.0.1", cadir.ca().cert);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "t\n");

    r = psql("host=db.example.com hostaddr=127.0.0.1", cadir.ca().cert);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.out, "t\n");

    r = psql("host=wrong.example hostaddr=127.0.0.1", cadir.ca().cert);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("does not match host name \"wrong.example\""), std::string::npos) << r.err;

    TempDir other;
    ensure_ca(other.ca());
    r = psql("host=127.0.0.1", other.ca().cert);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
}
