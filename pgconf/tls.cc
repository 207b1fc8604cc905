// hostd's local CA and the tenants' server certificates, with OpenSSL 3. Every OpenSSL object
// is owned by a unique_ptr with a deleter struct from the moment it exists, so no path (a
// throw included) leaks one; ownership passes to OpenSSL only through an explicit release().

#include "pgconf/tls.h"

#include <arpa/inet.h>
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <filesystem>
#include <memory>

#include "base/error.h"
#include "base/fs.h"
#include "base/strings.h"

namespace hostd::pgconf {
namespace {

// A stateless deleter for an OpenSSL type: Deleter<X509_free> and so on.
template <auto Free>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        Free(p);
    }
};
using Pkey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Deleter<X509_free>>;
using Ext = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Bignum = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using GeneralName = std::unique_ptr<GENERAL_NAME, Deleter<GENERAL_NAME_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, Deleter<GENERAL_NAMES_free>>;
using OctetString = std::unique_ptr<ASN1_OCTET_STRING, Deleter<ASN1_OCTET_STRING_free>>;
using Ia5String = std::unique_ptr<ASN1_IA5STRING, Deleter<ASN1_IA5STRING_free>>;

constexpr int kCaDays = 3650;
constexpr int kMaxDays = 3650;
constexpr long kBackdateSeconds = 300;  // notBefore in the past, for clocks a little behind
constexpr size_t kMaxCommonName = 64;   // ub-common-name (RFC 5280)

// "<what>: <OpenSSL's queued errors>", and the queue is left empty.
[[noreturn]] void throw_openssl(const std::string& what, Errc code = Errc::failed) {
    std::string detail;
    char buf[256];
    while (unsigned long e = ERR_get_error()) {
        ERR_error_string_n(e, buf, sizeof buf);
        if (!detail.empty()) detail += "; ";
        detail += buf;
    }
    throw Error(code, detail.empty() ? what : what + ": " + detail);
}

// Key material read into memory is wiped once parsed.
struct Wipe {
    std::string& s;
    ~Wipe() {
        if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    }
};

// A password prompt on the terminal would hang a daemon: an encrypted key simply fails.
int no_passphrase(char*, int, int, void*) { return -1; }

Bio mem_bio() {
    Bio b(BIO_new(BIO_s_mem()));
    if (!b) throw_openssl("Failed to allocate an OpenSSL memory buffer");
    return b;
}

Bio read_bio(const std::string& data) {
    if (data.size() > INT_MAX) throw Error(Errc::invalid, "PEM data too large");
    Bio b(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
    if (!b) throw_openssl("Failed to allocate an OpenSSL memory buffer");
    return b;
}

std::string bio_contents(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

std::string cert_to_pem(X509* x) {
    Bio b = mem_bio();
    if (PEM_write_bio_X509(b.get(), x) != 1) throw_openssl("Failed to encode a certificate as PEM");
    return bio_contents(b.get());
}

std::string key_to_pem(EVP_PKEY* k) {
    Bio b = mem_bio();
    if (PEM_write_bio_PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1)
        throw_openssl("Failed to encode a private key as PEM");
    std::string pem = bio_contents(b.get());
    char* data = nullptr;
    long n = BIO_get_mem_data(b.get(), &data);
    if (n > 0) OPENSSL_cleanse(data, static_cast<size_t>(n));
    return pem;
}

Cert cert_from_pem(const std::string& pem, const std::string& what) {
    Bio b = read_bio(pem);
    Cert x(PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr));
    if (!x) throw_openssl("Failed to read " + what + " as a PEM certificate", Errc::invalid);
    return x;
}

Pkey key_from_pem(const std::string& pem, const std::string& what) {
    Bio b = read_bio(pem);
    Pkey k(PEM_read_bio_PrivateKey(b.get(), nullptr, no_passphrase, nullptr));
    if (!k) throw_openssl("Failed to read " + what + " as an unencrypted PEM private key");
    return k;
}

Pkey new_ec_key() {
    Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    if (!k) throw_openssl("Failed to generate an EC P-256 key");
    return k;
}

void set_common_name(X509_NAME* name, const std::string& cn) {
    if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.data()), static_cast<int>(cn.size()),
                                   -1, 0) != 1)
        throw_openssl("Failed to set the common name '" + cn + "'");
}

// 128 random bits, never zero; an unsigned big number, so the DER INTEGER is positive.
void set_random_serial(X509* x) {
    std::array<unsigned char, 16> buf{};
    do {
        if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1)
            throw_openssl("Failed to get random bytes for a serial number");
    } while (std::all_of(buf.begin(), buf.end(), [](unsigned char c) { return c == 0; }));
    Bignum bn(BN_bin2bn(buf.data(), static_cast<int>(buf.size()), nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(x)))
        throw_openssl("Failed to set a certificate's serial number");
}

// A new v3 certificate for key, valid from a little before now for `days`.
Cert new_cert(EVP_PKEY* key, int days) {
    Cert x(X509_new());
    if (!x) throw_openssl("Failed to allocate a certificate");
    if (X509_set_version(x.get(), X509_VERSION_3) != 1) throw_openssl("Failed to set the certificate version");
    set_random_serial(x.get());
    if (!X509_gmtime_adj(X509_getm_notBefore(x.get()), -kBackdateSeconds) ||
        !X509_time_adj_ex(X509_getm_notAfter(x.get()), days, 0, nullptr))
        throw_openssl("Failed to set the certificate's validity");
    if (X509_set_pubkey(x.get(), key) != 1) throw_openssl("Failed to set the certificate's public key");
    return x;
}

// An extension from OpenSSL's configuration syntax; hostd passes only constant strings here
// (the names of the subjectAltName never go through this parser).
void add_conf_ext(X509* x, X509V3_CTX* ctx, int nid, const char* value) {
    Ext e(X509V3_EXT_conf_nid(nullptr, ctx, nid, value));
    if (!e || X509_add_ext(x, e.get(), -1) != 1)
        throw_openssl(std::string("Failed to add the certificate extension ") + OBJ_nid2sn(nid) + " = " + value);
}

void sign(X509* x, EVP_PKEY* key) {
    if (X509_sign(x, key, EVP_sha256()) <= 0) throw_openssl("Failed to sign a certificate");
}

std::string this_host_name() {
    char buf[HOST_NAME_MAX + 1] = {};
    if (::gethostname(buf, sizeof buf - 1) < 0 || buf[0] == '\0') return "localhost";
    return buf;
}

// A SAN entry: an address in network byte order, or a lower-case DNS name.
struct SanName {
    bool is_ip = false;
    std::string text;   // canonical: inet_ntop's form, or the lower-case name
    std::string bytes;  // 4 or 16 bytes when is_ip
};

bool is_dns_name(const std::string& s) {
    if (s.empty() || s.size() > 253) return false;
    size_t start = 0;
    bool last_label_numeric = true;
    for (size_t i = 0; i <= s.size(); i++) {
        if (i < s.size() && s[i] != '.') continue;
        std::string_view label(s.data() + start, i - start);
        bool wildcard = start == 0 && label == "*" && i < s.size();
        if (!wildcard) {
            if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return false;
            for (char c : label)
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
        }
        last_label_numeric = std::all_of(label.begin(), label.end(), [](char c) { return c >= '0' && c <= '9'; });
        start = i + 1;
    }
    // No top-level domain is all digits: "300.1.1.1" is a mistyped address, not a name.
    return !last_label_numeric;
}

SanName parse_san_name(const std::string& raw) {
    std::string s = raw;
    if (s.size() > 2 && s.front() == '[' && s.back() == ']') s = s.substr(1, s.size() - 2);  // URL form of IPv6
    unsigned char addr[16];
    char text[INET6_ADDRSTRLEN];
    for (int af : {AF_INET, AF_INET6}) {
        if (::inet_pton(af, s.c_str(), addr) == 1 && ::inet_ntop(af, addr, text, sizeof text)) {
            size_t len = af == AF_INET ? 4 : 16;
            return {true, text, std::string(reinterpret_cast<const char*>(addr), len)};
        }
    }
    s = lower(s);
    if (!s.empty() && s.back() == '.') s.pop_back();  // the root's dot: not part of what clients match
    if (!is_dns_name(s))
        throw Error(Errc::invalid, "'" + raw + "' is neither an IP address nor a host name", "names");
    return {false, s, {}};
}

std::vector<SanName> parse_san_names(const std::vector<std::string>& names) {
    std::vector<SanName> out;
    for (const auto& n : names) {
        SanName s = parse_san_name(n);
        bool dup = std::any_of(out.begin(), out.end(),
                               [&](const SanName& o) { return o.is_ip == s.is_ip && o.text == s.text; });
        if (!dup) out.push_back(std::move(s));
    }
    return out;
}

void add_subject_alt_names(X509* x, const std::vector<SanName>& names) {
    GeneralNames gens(GENERAL_NAMES_new());
    if (!gens) throw_openssl("Failed to allocate subjectAltName");
    for (const auto& n : names) {
        GeneralName gn(GENERAL_NAME_new());
        if (!gn) throw_openssl("Failed to allocate a subjectAltName entry");
        if (n.is_ip) {
            OctetString os(ASN1_OCTET_STRING_new());
            if (!os || ASN1_OCTET_STRING_set(os.get(), reinterpret_cast<const unsigned char*>(n.bytes.data()),
                                             static_cast<int>(n.bytes.size())) != 1)
                throw_openssl("Failed to encode the address '" + n.text + "'");
            GENERAL_NAME_set0_value(gn.get(), GEN_IPADD, os.release());
        } else {
            Ia5String ia5(ASN1_IA5STRING_new());
            if (!ia5 || ASN1_STRING_set(ia5.get(), n.text.data(), static_cast<int>(n.text.size())) != 1)
                throw_openssl("Failed to encode the name '" + n.text + "'");
            GENERAL_NAME_set0_value(gn.get(), GEN_DNS, ia5.release());
        }
        if (sk_GENERAL_NAME_push(gens.get(), gn.get()) <= 0) throw_openssl("Failed to add a subjectAltName entry");
        gn.release();  // the stack owns it now
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT) != 1)
        throw_openssl("Failed to add subjectAltName");
}

struct Ca {
    Cert cert;
    Pkey key;
};

void check_paths(const CaPaths& ca) {
    if (ca.cert.empty()) throw Error(Errc::invalid, "The CA certificate path is empty", "cert");
    if (ca.key.empty()) throw Error(Errc::invalid, "The CA key path is empty", "key");
}

// Both files, parsed and checked to belong together.
Ca load_ca(const CaPaths& ca) {
    Ca out;
    out.cert = cert_from_pem(read_file(ca.cert), "the CA certificate '" + ca.cert + "'");
    std::string key_pem = read_file(ca.key);
    Wipe wipe{key_pem};
    out.key = key_from_pem(key_pem, "the CA key '" + ca.key + "'");
    if (X509_check_private_key(out.cert.get(), out.key.get()) != 1)
        throw_openssl("The CA key '" + ca.key + "' does not belong to the CA certificate '" + ca.cert + "'");
    if (X509_check_ca(out.cert.get()) < 1)
        throw Error(Errc::failed, "The certificate '" + ca.cert + "' is not a CA certificate");
    return out;
}

void create_ca(const CaPaths& ca) {
    Pkey key = new_ec_key();
    Cert x = new_cert(key.get(), kCaDays);
    std::string cn = "hostd local CA " + this_host_name();
    if (cn.size() > kMaxCommonName) cn.resize(kMaxCommonName);
    set_common_name(X509_get_subject_name(x.get()), cn);
    if (X509_set_issuer_name(x.get(), X509_get_subject_name(x.get())) != 1)
        throw_openssl("Failed to set the CA's issuer name");
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
    add_conf_ext(x.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    add_conf_ext(x.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_conf_ext(x.get(), &ctx, NID_subject_key_identifier, "hash");
    add_conf_ext(x.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    sign(x.get(), key.get());

    for (const auto& path : {ca.key, ca.cert}) {
        auto dir = std::filesystem::path(path).parent_path();
        if (!dir.empty() && !path_exists(dir.string())) make_dirs(dir.string(), 0700);
    }
    // The key first: a crash in between leaves a key without a certificate, which ensure_ca
    // reports rather than silently replacing.
    std::string key_pem = key_to_pem(key.get());
    Wipe wipe{key_pem};
    write_file_atomic(ca.key, key_pem, 0600);
    write_file_atomic(ca.cert, cert_to_pem(x.get()), 0644);
}

}  // namespace

void ensure_ca(const CaPaths& ca) {
    check_paths(ca);
    ERR_clear_error();
    const bool has_cert = path_exists(ca.cert);
    const bool has_key = path_exists(ca.key);
    if (has_cert && has_key) {
        load_ca(ca);
        return;
    }
    if (has_cert != has_key) {
        const std::string& present = has_cert ? ca.cert : ca.key;
        const std::string& missing = has_cert ? ca.key : ca.cert;
        throw Error(Errc::failed, "The CA is incomplete: '" + present + "' exists but '" + missing +
                                      "' does not. Restore it, or remove '" + present +
                                      "' to create a new CA (every tenant certificate must then be reissued)");
    }
    create_ca(ca);
}

PemPair issue_server_cert(const CaPaths& ca, const ServerCertRequest& req) {
    try {
        return issue_cert(ca, {.cn = req.tenant, .names = req.names, .server = true, .client = false, .days = req.days});
    } catch (const Error& e) {
        if (e.field() == "cn") throw Error(e.code(), e.what(), "tenant");
        throw;
    }
}

PemPair issue_cert(const CaPaths& ca, const CertRequest& req) {
    check_paths(ca);
    if (req.cn.empty()) throw Error(Errc::invalid, "The certificate request has no common name (CN)", "cn");
    if (req.cn.size() > kMaxCommonName)
        throw Error(Errc::invalid, "The name '" + req.cn + "' is longer than a certificate's CN allows (64)", "cn");
    if (std::any_of(req.cn.begin(), req.cn.end(), [](unsigned char c) { return c < 0x20 || c == 0x7f; }))
        throw Error(Errc::invalid, "The certificate's name contains a control character", "cn");
    if (!req.server && !req.client)
        throw Error(Errc::invalid, "A certificate must be for a server, a client or both", "usage");
    if (req.server && req.names.empty())
        throw Error(Errc::invalid, "A server certificate needs at least one host name or address", "names");
    if (req.days < 1 || req.days > kMaxDays)
        throw Error(Errc::invalid, "A certificate's validity must be 1 to 3650 days, not " + std::to_string(req.days),
                    "days");
    const std::vector<SanName> names = req.names.empty() ? std::vector<SanName>{} : parse_san_names(req.names);

    ERR_clear_error();
    if (!path_exists(ca.cert) || !path_exists(ca.key))
        throw Error(Errc::not_found, "The CA ('" + ca.cert + "', '" + ca.key + "') does not exist yet");
    Ca issuer = load_ca(ca);

    Pkey key = new_ec_key();
    Cert x = new_cert(key.get(), req.days);
    set_common_name(X509_get_subject_name(x.get()), req.cn);
    if (X509_set_issuer_name(x.get(), X509_get_subject_name(issuer.cert.get())) != 1)
        throw_openssl("Failed to set the certificate's issuer name");
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer.cert.get(), x.get(), nullptr, nullptr, 0);
    add_conf_ext(x.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE");
    // A TLS client signs; a server signs too (ECDHE with an EC key).
    add_conf_ext(x.get(), &ctx, NID_key_usage, "critical,digitalSignature");
    const std::string eku = req.server && req.client ? "serverAuth,clientAuth" : req.server ? "serverAuth" : "clientAuth";
    add_conf_ext(x.get(), &ctx, NID_ext_key_usage, eku.c_str());
    add_conf_ext(x.get(), &ctx, NID_subject_key_identifier, "hash");
    add_conf_ext(x.get(), &ctx, NID_authority_key_identifier, "keyid:always");
    if (!names.empty()) add_subject_alt_names(x.get(), names);
    sign(x.get(), issuer.key.get());
    return {cert_to_pem(x.get()), key_to_pem(key.get())};
}

std::string ca_certificate_pem(const CaPaths& ca) {
    check_paths(ca);
    ERR_clear_error();
    std::string pem = read_file(ca.cert);
    cert_from_pem(pem, "the CA certificate '" + ca.cert + "'");  // it is one
    return pem;
}

}  // namespace hostd::pgconf
