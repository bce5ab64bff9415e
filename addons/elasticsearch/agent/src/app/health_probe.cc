#include "app/health_probe.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "storage/keystore_file.h"

namespace agent::app {
namespace {

// Under the probe's timeout in the chart (timeoutSeconds 5): a TLS handshake on a busy node
// can take a second.
constexpr std::chrono::milliseconds kProbeTimeout{4000};

// The first DNS name of a PEM certificate: the name the agent's own certificate is verified
// against, whatever pod it was issued for.
Result<std::string> FirstDnsName(const std::filesystem::path& cert_file) {
  auto pem = storage::ReadFileIfExists(cert_file, storage::Links::kFollow);
  if (!pem.ok()) return pem.error();
  if (!pem.value()) {
    return MakeError("OPTION_INVALID", "--tls-cert-file " + cert_file.string() + " does not exist");
  }
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.value()->data(), static_cast<int>(pem.value()->size())), &BIO_free);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  if (!cert) {
    return MakeError("OPTION_INVALID",
                     "--tls-cert-file " + cert_file.string() + " holds no PEM certificate");
  }
  using Names = std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)>;
  Names names(static_cast<GENERAL_NAMES*>(
                  X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)),
              &GENERAL_NAMES_free);
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    if (name->type != GEN_DNS) continue;
    const ASN1_IA5STRING* dns = name->d.dNSName;
    return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(dns)),
                       static_cast<size_t>(ASN1_STRING_length(dns)));
  }
  return MakeError("OPTION_INVALID", "--tls-cert-file " + cert_file.string() +
                                         " names no DNS name to verify the agent against");
}

std::string LoopbackFor(const std::string& listen_address) {
  if (listen_address == "0.0.0.0") return "127.0.0.1";
  if (listen_address == "::") return "::1";
  return listen_address;
}

}  // namespace

Result<node::NodeEndpoint> HealthProbeEndpoint(const Options& o) {
  node::NodeEndpoint e;
  e.address.host = LoopbackFor(o.listen_address);
  e.address.port = o.port;
  e.timeout = kProbeTimeout;
  e.label = "agent";
  if (!o.tls_cert_file) return e;
  if (!o.tls_ca_file) {
    return MakeError("OPTION_INVALID",
                     "es-agent health over HTTPS needs --tls-ca-file to verify the agent");
  }
  auto name = FirstDnsName(*o.tls_cert_file);
  if (!name.ok()) return name.error();
  e.https = true;
  e.server_name = name.value();
  e.ca_file = *o.tls_ca_file;
  if (o.tls_require_client_cert) {
    // The agent's own certificate, signed by the CA it checks clients against. It must allow
    // client use (no extendedKeyUsage, or clientAuth among them, as KubeBlocks issues them).
    e.client_cert_file = *o.tls_cert_file;
    e.client_key_file = *o.tls_key_file;
  }
  return e;
}

int RunHealthProbe(const std::vector<std::string>& args, const EnvLookup& env, std::ostream& out,
                   std::ostream& err) {
  auto options = ParseServeOptions(args, env);
  if (!options.ok()) {
    err << "es-agent health: error: " << options.error().message << "\n";
    return 2;
  }
  if (options.value().help) {
    out << "usage: es-agent health [the options of es-agent serve]\n"
           "Asks the agent these options describe for GET /health; exit 0 when it is alive.\n";
    return 0;
  }
  auto endpoint = HealthProbeEndpoint(options.value());
  if (!endpoint.ok()) {
    err << "es-agent health: error: " << endpoint.error().message << "\n";
    return 2;
  }
  node::NodeClient client(endpoint.value(), "");
  auto reply = client.Send("GET", "/health", "", "-");
  if (!reply.ok()) {
    err << "es-agent health: " << reply.error().message << "\n";
    return 1;
  }
  const auto body = nlohmann::json::parse(reply.value().body, nullptr, false);
  if (reply.value().status != 200 || !body.is_object() || body.value("status", "") != "ok") {
    err << "es-agent health: the agent answered GET /health with HTTP " << reply.value().status
        << "\n";
    return 1;
  }
  out << "ok\n";
  return 0;
}

}  // namespace agent::app
