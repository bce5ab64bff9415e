#include "app/keystore_cli.h"

#include <algorithm>
#include <istream>
#include <optional>
#include <ostream>

#include "crypto/crypto.h"
#include "keystore/codec.h"
#include "service/keystore_service.h"

namespace agent::app {
namespace {

using service::KeystoreService;

struct Command {
  std::string name;                // list, add, remove, create, passwd
  std::vector<std::string> names;  // settings, for add and remove
  service::ServiceOptions service;
};

constexpr char kSeedName[] = "keystore.seed";

Result<Command> Parse(const std::vector<std::string>& args, const EnvLookup& env) {
  Command c;
  c.service.config_dir = env("AGENT_CONFIG_DIR").value_or("/usr/share/elasticsearch/config");
  if (auto e = env("AGENT_ENGINE")) c.service.product = keystore::ParseProduct(*e);
  if (auto v = env("AGENT_ENGINE_VERSION"); v && !v->empty()) c.service.engine_version = *v;
  if (auto f = env("AGENT_KEYSTORE_PASSWORD_FILE"); f && !f->empty()) c.service.password_file = *f;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size()) return MakeError("OPTION_INVALID", a + " needs a value");
      return args[++i];
    };
    if (a == "--config-dir" || a == "--engine" || a == "--engine-version" ||
        a == "--keystore-password-file") {
      auto v = value();
      if (!v.ok()) return v.error();
      if (a == "--config-dir") c.service.config_dir = v.value();
      if (a == "--engine-version") c.service.engine_version = v.value();
      if (a == "--keystore-password-file") c.service.password_file = v.value();
      if (a == "--engine") {
        c.service.product = keystore::ParseProduct(v.value());
        if (!c.service.product) {
          return MakeError("OPTION_INVALID", "--engine must be elasticsearch or opensearch");
        }
      }
    } else if (a.rfind("-", 0) == 0) {
      return MakeError("OPTION_INVALID", "unknown option " + a);
    } else if (c.name.empty()) {
      c.name = a;
    } else {
      c.names.push_back(a);
    }
  }
  static const char* const kCommands[] = {"list", "add", "remove", "create", "passwd"};
  if (std::find(std::begin(kCommands), std::end(kCommands), c.name) == std::end(kCommands)) {
    return MakeError("OPTION_INVALID",
                     c.name.empty() ? "no command given" : "unknown command \"" + c.name + "\"");
  }
  const bool takes_names = c.name == "add" || c.name == "remove";
  if (takes_names == c.names.empty()) {
    return MakeError("OPTION_INVALID", takes_names ? c.name + " needs at least one setting name"
                                                   : c.name + " takes no setting names");
  }
  // The name is told by its place, not echoed: a secret typed there by mistake (values come
  // from standard input) must not reach a terminal log.
  for (size_t i = 0; i < c.names.size(); ++i) {
    if (!keystore::IsValidSettingName(c.names[i])) {
      return MakeError("OPTION_INVALID", "setting name " + std::to_string(i + 1) + " of " +
                                             std::to_string(c.names.size()) +
                                             " does not match [A-Za-z0-9_.-]+ (values are read "
                                             "from standard input, one a line)");
    }
  }
  return c;
}

// One line of standard input without its line terminator, as the engines' tool reads one.
// One line of standard input; nullopt at its end (a missing value is not an empty one).
std::optional<std::string> ReadLine(std::istream& in) {
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// An Update that must not create the keystore found none (it reports no format then).
Error Missing(const service::WriteResult& result) {
  return MakeError("KEYSTORE_MISSING", result.keystore.string() + " does not exist");
}

Result<service::WriteResult> Execute(const Command& c, KeystoreService& svc, std::istream& in,
                                     std::ostream& out) {
  if (c.name == "list") {
    auto d = svc.Describe();
    if (!d.ok()) return d.error();
    if (!d.value().exists)
      return MakeError("KEYSTORE_MISSING", d.value().path.string() + " does not exist");
    for (const std::string& n : d.value().names) out << n << "\n";
    return service::WriteResult{};
  }
  if (c.name == "add") {
    std::vector<std::string> values;
    for (size_t i = 0; i < c.names.size(); ++i) {
      auto value = ReadLine(in);
      if (!value) {
        for (std::string& v : values) crypto::Cleanse(v);
        return MakeError("VALUE_MISSING", "standard input ended after " + std::to_string(i) +
                                              " value(s); add needs one line for each of the " +
                                              std::to_string(c.names.size()) + " names");
      }
      values.push_back(std::move(*value));
    }
    auto result = svc.Update(
        [&](keystore::Keystore& ks) {
          for (size_t i = 0; i < c.names.size(); ++i) ks.Set(c.names[i], values[i]);
          return KeystoreService::Change{c.names, true};
        },
        /*create_if_missing=*/true);
    for (std::string& v : values) crypto::Cleanse(v);
    return result;
  }
  if (c.name == "remove") {
    std::string missing;
    auto result = svc.Update(
        [&](keystore::Keystore& ks) {
          for (const std::string& n : c.names) {
            if (ks.Find(n) == nullptr) missing = n;
          }
          if (!missing.empty()) return KeystoreService::Change{{}, false};  // all or nothing
          for (const std::string& n : c.names) ks.Remove(n);
          return KeystoreService::Change{c.names, true};
        },
        /*create_if_missing=*/false);
    if (result.ok() && !missing.empty()) {
      return MakeError("SETTING_MISSING",
                       "setting [" + missing + "] does not exist in the keystore");
    }
    if (result.ok() && result.value().format_version == 0) return Missing(result.value());
    return result;
  }
  if (c.name == "create") {
    // Never over an existing keystore: its entries would be lost. Remove it first, knowingly.
    service::KeystoreHealth h = svc.Health();
    if (h.exists) return MakeError("KEYSTORE_EXISTS", h.path->string() + " exists already");
    // A new keystore gets its fresh keystore.seed from the service, as the API's writes do.
    return svc.Update(
        [](keystore::Keystore&) {
          return KeystoreService::Change{{kSeedName}, true};
        },
        /*create_if_missing=*/true);
  }
  // passwd: the new password is one line of standard input; an empty line removes the
  // password. No line at all (`kubectl exec` without -i) is refused, not taken as empty.
  std::optional<std::string> line = ReadLine(in);
  if (!line) {
    return MakeError("VALUE_MISSING",
                     "passwd reads the new password from one line of standard input and got "
                     "none (an empty line removes the password); nothing changed");
  }
  std::string password = std::move(*line);
  std::string salt_error;
  auto result = svc.Update(
      [&](keystore::Keystore& ks) {
        auto salt = crypto::RandomBytes(keystore::kSaltSize);
        if (!salt.ok() || !keystore::Rekey(ks, password, std::move(salt.value())).ok()) {
          salt_error = "cannot derive the new key";
          return KeystoreService::Change{};
        }
        return KeystoreService::Change{{}, true};
      },
      /*create_if_missing=*/false);
  crypto::Cleanse(password);
  if (!salt_error.empty()) return MakeError("CRYPTO_FAILED", salt_error);
  if (result.ok() && result.value().format_version == 0) return Missing(result.value());
  return result;
}

}  // namespace

int RunKeystoreCommand(const std::vector<std::string>& args, const EnvLookup& env, std::istream& in,
                       std::ostream& out, std::ostream& err) {
  if (!args.empty() && (args[0] == "--help" || args[0] == "-h")) {
    out << KeystoreUsage();
    return 0;
  }
  auto command = Parse(args, env);
  if (!command.ok()) {
    err << "es-agent keystore: error: " << command.error().message << "\n" << KeystoreUsage();
    return 2;
  }
  KeystoreService svc(command.value().service);
  auto result = Execute(command.value(), svc, in, out);
  if (!result.ok()) {
    err << "es-agent keystore: error: " << result.error().code << ": " << result.error().message
        << "\n";
    return 1;
  }
  const std::string& name = command.value().name;
  if (name == "passwd") {
    err << "keystore password changed; update the password file the node and the agent read\n";
  } else if (name != "list") {
    err << name << ": " << result.value().keystore.string() << " (format "
        << result.value().format_version << ")\n";
  }
  return 0;
}

std::string KeystoreUsage() {
  return R"(usage: es-agent keystore [options] COMMAND [SETTING...]

Commands on the node's keystore, with the same lock and atomic replacement as the API. Do not
run the engine's own keystore tool at the same time: it does not take the lock.

  list                 the setting names, sorted
  add NAME...          set each NAME to one line of standard input, in order
  remove NAME...       remove the settings (all must exist; nothing changes otherwise)
  create               a new keystore holding only a fresh keystore.seed (never over one)
  passwd               the new password is one line of standard input (empty: no password);
                       afterwards update the password file that the node and the agent read

Options (and their environment variables): --config-dir DIR [AGENT_CONFIG_DIR],
--engine NAME [AGENT_ENGINE], --engine-version X.Y.Z [AGENT_ENGINE_VERSION] (the format of a
new keystore), --keystore-password-file F [AGENT_KEYSTORE_PASSWORD_FILE].
)";
}

}  // namespace agent::app
