#include "service/keystore_service.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "crypto/crypto.h"
#include "keystore/codec.h"
#include "storage/keystore_file.h"

namespace agent::service {
namespace {

namespace fs = std::filesystem;
using keystore::Product;

constexpr size_t kSeedLength = 20;  // the engines' keystore.seed: 20 chars from this alphabet
constexpr std::string_view kSeedAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~!@#$%^&*-_=+?";

// A fresh keystore.seed, drawn without modulo bias from the CSPRNG.
Result<std::string> NewSeed() {
  std::string seed;
  const unsigned limit = 256 - (256 % kSeedAlphabet.size());
  while (seed.size() < kSeedLength) {
    auto bytes = crypto::RandomBytes(32);
    if (!bytes.ok()) return bytes.error();
    for (char c : bytes.value()) {
      auto u = static_cast<unsigned char>(c);
      if (u < limit && seed.size() < kSeedLength)
        seed.push_back(kSeedAlphabet[u % kSeedAlphabet.size()]);
    }
  }
  return seed;
}

// Well under the jobs' 30 s per agent call: a write that cannot start by then fails in time.
constexpr auto kLockTimeout = std::chrono::seconds(10);

bool Exists(const fs::path& path) {
  std::error_code ec;  // an unreadable directory is "not there", not an exception
  return fs::exists(path, ec);
}

// Whether anything is at `path`, a link (even a dangling one) included: a keystore path
// taken by a link still tells the engine, and /health then names the problem.
bool Taken(const fs::path& path) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(path, ec));
}

fs::path KeystorePath(const fs::path& dir, Product product) {
  return dir / std::string(keystore::FileName(product));
}

Error InFile(const fs::path& path, const Error& e) {
  return MakeError(e.code, path.string() + ": " + e.message);
}

}  // namespace

KeystoreService::KeystoreService(ServiceOptions options) : options_(std::move(options)) {}

std::optional<Product> DetectProductIn(const fs::path& config_dir) {
  for (Product p : {Product::kElasticsearch, Product::kOpenSearch}) {
    if (Taken(KeystorePath(config_dir, p))) return p;
  }
  if (Exists(config_dir / "elasticsearch.yml")) return Product::kElasticsearch;
  if (Exists(config_dir / "opensearch.yml")) return Product::kOpenSearch;
  return std::nullopt;
}

std::optional<Product> KeystoreService::DetectProductLocally() const {
  if (options_.product) return options_.product;
  return DetectProductIn(options_.config_dir);
}

Result<Product> KeystoreService::ResolveProduct() {
  if (auto p = DetectProductLocally()) return *p;
  if (!options_.fetch_engine_info) {
    return MakeError(kEngineUnknown, "cannot tell the engine: no keystore or engine config in " +
                                         options_.config_dir.string() + " and no --engine");
  }
  auto info = NodeEngine();
  if (!info.ok()) return info.error();
  return info.value().product;
}

Result<EngineInfo> KeystoreService::NodeEngine() {
  {
    std::lock_guard lock(engine_mutex_);
    if (node_engine_) return *node_engine_;
  }
  // Asked without the mutex held, so that /health (which reads the cache) never waits for
  // the node; two requests that both find no answer yet both ask, and get the same one.
  auto info = options_.fetch_engine_info();
  if (!info.ok()) return info.error();
  std::lock_guard lock(engine_mutex_);
  if (!node_engine_) node_engine_ = info.value();
  return *node_engine_;
}

Result<int> KeystoreService::FormatForNewKeystore(Product product) {
  std::string version;
  if (options_.engine_version) {
    version = *options_.engine_version;
  } else if (options_.fetch_engine_info) {
    auto info = NodeEngine();
    if (!info.ok()) return info.error();
    version = info.value().version;
  } else {
    return MakeError(kEngineUnknown, "no keystore yet and no engine version to choose its format");
  }
  auto format = keystore::FormatWrittenBy(product, version);
  if (!format) {
    return MakeError(kEngineUnknown, std::string(keystore::ProductName(product)) + " " + version +
                                         " writes no keystore format this agent supports");
  }
  return *format;
}

Result<std::string> KeystoreService::ReadPassword() const {
  if (!options_.password_file) return std::string();
  auto bytes = storage::ReadFileIfExists(*options_.password_file, storage::Links::kFollow);
  if (!bytes.ok()) return MakeError(kPasswordFileUnreadable, bytes.error().message);
  if (!bytes.value()) {
    return MakeError(
        kPasswordFileUnreadable,
        "the keystore password file " + options_.password_file->string() + " does not exist");
  }
  std::string password = std::move(*bytes.value());
  // A Secret written by hand often ends with one newline; the engines' tool strips one too.
  if (!password.empty() && password.back() == '\n') password.pop_back();
  if (!password.empty() && password.back() == '\r') password.pop_back();
  return password;
}

Result<std::string> KeystoreService::ReloadPassword() {
  auto product = ResolveProduct();
  if (!product.ok()) return product.error();
  auto bytes = storage::ReadFileIfExists(KeystorePath(options_.config_dir, product.value()));
  if (!bytes.ok()) return bytes.error();
  if (!bytes.value()) return std::string();
  auto header = keystore::PeekHeader(*bytes.value(), product.value());
  if (header && !header->has_password) return std::string();
  return ReadPassword();
}

Result<KeystoreService::LockedKeystore> KeystoreService::LockForChange() {
  if (Status s = CheckNotRootInOthersDirectory(); !s.ok()) return s.error();
  auto product = ResolveProduct();
  if (!product.ok()) return product.error();
  const fs::path path = KeystorePath(options_.config_dir, product.value());
  auto password = ReadPassword();
  if (!password.ok()) return password.error();
  // Before creating anything (the lock file), so that a wrong user leaves no trace.
  if (Status owner = storage::CheckOwner(path); !owner.ok()) return owner.error();
  // Every change of the agent's takes it (the engines' own tool does not).
  auto lock = storage::FileLock::Acquire(path.string() + ".lock", kLockTimeout);
  if (!lock.ok()) return lock.error();
  // A write killed half-way leaves its temporary file; under the lock none is live.
  if (auto stale = storage::RemoveStaleTemporaries(path); !stale.ok()) return stale.error();
  return LockedKeystore{product.value(), path, std::move(password.value()),
                        std::move(lock.value())};
}

KeystoreService::LockedKeystore::~LockedKeystore() { crypto::Cleanse(password); }

Result<WriteResult> KeystoreService::Update(const Mutation& mutate, bool create_if_missing) {
  auto locked = LockForChange();
  if (!locked.ok()) return locked.error();
  const fs::path& path = locked.value().path;
  auto existing = storage::ReadFileIfExists(path);
  if (!existing.ok()) return existing.error();

  WriteResult result;
  result.keystore = path;
  if (!existing.value() && !create_if_missing) return result;  // nothing there to change
  result.created = !existing.value().has_value();
  auto ks = LoadOrCreate(existing.value(), locked.value().product, locked.value().password);
  if (!ks.ok()) return InFile(path, ks.error());
  result.format_version = ks.value().version;

  Change change = mutate(ks.value());
  result.settings = std::move(change.names);
  if (!change.changed && existing.value()) {
    result.sha256 = crypto::Sha256Hex(*existing.value());
    return result;  // the file already says it: no save
  }
  // The salt (so the derived key) is kept; every save draws a fresh IV.
  auto iv = crypto::RandomBytes(keystore::kIvSize);
  if (!iv.ok()) return iv.error();
  auto bytes = keystore::Seal(ks.value(), iv.value());
  if (!bytes.ok()) return InFile(path, bytes.error());
  if (Status s = storage::ReplaceAtomically(path, bytes.value()); !s.ok()) return s.error();
  result.sha256 = crypto::Sha256Hex(bytes.value());
  result.changed = true;
  return result;
}

Result<WriteResult> KeystoreService::UpdateWithTool(const std::vector<cli_backend::CliSetting>& set,
                                                    const std::vector<std::string>& remove) {
  auto locked = LockForChange();
  if (!locked.ok()) return locked.error();
  const fs::path& path = locked.value().path;
  const std::string& password = locked.value().password;
  cli_backend::CliKeystoreOptions cli = *options_.cli;
  cli.product = locked.value().product;
  cli.config_dir = options_.config_dir;

  // The tool would follow a link or block on a FIFO: refused as the native backend refuses.
  if (Status s = storage::CheckRegularFileOrAbsent(path); !s.ok()) return s.error();
  WriteResult result;
  result.keystore = path;
  result.created = !Exists(path);
  if (result.created && set.empty()) return result;  // nothing there to remove from
  std::vector<std::string> present_to_remove;
  if (!remove.empty()) {
    auto names = NamesInKeystore(cli, path, password);
    if (!names.ok()) return names.error();
    for (const std::string& name : remove) {
      if (std::find(names.value().begin(), names.value().end(), name) != names.value().end()) {
        present_to_remove.push_back(name);
      }
    }
  }
  // The tools give the file a mode of their own: an operator's 0640 is put back after them.
  const storage::FileAccess access = storage::AccessToKeep(path);
  Status done = Ok{};
  if (!set.empty()) done = cli_backend::CliAddSettings(cli, set, password);
  if (done.ok() && !present_to_remove.empty()) {
    done = cli_backend::CliRemoveSettings(cli, present_to_remove, password);
  }
  if (!result.created) storage::RestoreAccess(path, access);
  if (!done.ok()) return done.error();

  for (const auto& [name, unused] : set) result.settings.push_back(name);
  // A removal is reported only when it was not part of a write (a write's stale token).
  if (set.empty()) result.settings = present_to_remove;
  result.changed = !set.empty() || !present_to_remove.empty();
  auto bytes = storage::ReadFileIfExists(path);
  if (!bytes.ok()) return bytes.error();
  if (bytes.value()) {
    result.sha256 = crypto::Sha256Hex(*bytes.value());
    if (auto header = keystore::PeekHeader(*bytes.value(), locked.value().product)) {
      result.format_version = header->version;
    }
  }
  return result;
}

// The names the keystore holds: read natively where the codec knows the format (no tool run,
// so a write that has nothing stale to remove is the one `add` the cli backend promises),
// through the tool's `list` otherwise.
Result<std::vector<std::string>> KeystoreService::NamesInKeystore(
    const cli_backend::CliKeystoreOptions& cli, const fs::path& path, const std::string& password) {
  auto bytes = storage::ReadFileIfExists(path);
  if (!bytes.ok()) return bytes.error();
  if (!bytes.value()) return std::vector<std::string>{};
  if (auto ks = keystore::Open(*bytes.value(), cli.product, password); ks.ok()) {
    std::vector<std::string> names;
    for (const keystore::Entry& e : ks.value().entries) names.push_back(e.name);
    return names;
  }
  return cli_backend::CliListSettings(cli, password);
}

Result<WriteResult> KeystoreService::WriteS3Credentials(const S3Credentials& credentials) {
  if (options_.cli) {
    std::vector<cli_backend::CliSetting> set = {
        {credentials.SettingName("access_key"), credentials.access_key},
        {credentials.SettingName("secret_key"), credentials.secret_key}};
    std::vector<std::string> remove;
    if (credentials.session_token) {
      set.emplace_back(credentials.SettingName("session_token"), *credentials.session_token);
    } else {
      remove.push_back(credentials.SettingName("session_token"));
    }
    auto result = UpdateWithTool(set, remove);
    for (auto& [name, value] : set) crypto::Cleanse(value);
    return result;
  }
  return Update(
      [&credentials](keystore::Keystore& ks) {
        Change c;
        c.changed = true;
        c.names = {credentials.SettingName("access_key"), credentials.SettingName("secret_key")};
        ks.Set(c.names[0], credentials.access_key);
        ks.Set(c.names[1], credentials.secret_key);
        const std::string token_name = credentials.SettingName("session_token");
        if (credentials.session_token) {
          ks.Set(token_name, *credentials.session_token);
          c.names.push_back(token_name);
        } else {
          ks.Remove(token_name);  // a stale token would pair with the new keys
        }
        return c;
      },
      /*create_if_missing=*/true);
}

Result<WriteResult> KeystoreService::RemoveS3Client(const std::string& client) {
  if (options_.cli) {
    std::vector<std::string> names;
    for (const char* suffix : {"access_key", "secret_key", "session_token"}) {
      names.push_back("s3.client." + client + "." + suffix);
    }
    return UpdateWithTool({}, names);
  }
  return Update(
      [&client](keystore::Keystore& ks) {
        Change c;
        for (const char* suffix : {"access_key", "secret_key", "session_token"}) {
          std::string name = "s3.client." + client + "." + suffix;
          if (ks.Remove(name)) c.names.push_back(std::move(name));
        }
        c.changed = !c.names.empty();
        return c;
      },
      /*create_if_missing=*/false);
}

Result<KeystoreDescription> KeystoreService::Describe() {
  auto product = ResolveProduct();
  if (!product.ok()) return product.error();
  KeystoreDescription d;
  d.path = KeystorePath(options_.config_dir, product.value());
  auto bytes = storage::ReadFileIfExists(d.path);
  if (!bytes.ok()) return bytes.error();
  if (!bytes.value()) return d;
  d.exists = true;
  auto password = ReadPassword();
  if (!password.ok()) return password.error();
  d.sha256 = crypto::Sha256Hex(*bytes.value());
  if (options_.cli) {
    cli_backend::CliKeystoreOptions cli = *options_.cli;
    cli.product = product.value();
    cli.config_dir = options_.config_dir;
    auto names = cli_backend::CliListSettings(cli, password.value());
    crypto::Cleanse(password.value());
    if (!names.ok()) return names.error();
    d.names = std::move(names.value());
    std::sort(d.names.begin(), d.names.end());
    if (auto header = keystore::PeekHeader(*bytes.value(), product.value())) {
      d.format_version = header->version;
      d.has_password = header->has_password;
    }
    return d;
  }
  auto ks = keystore::Open(*bytes.value(), product.value(), password.value());
  crypto::Cleanse(password.value());
  if (!ks.ok()) return InFile(d.path, ks.error());
  d.format_version = ks.value().version;
  d.has_password = ks.value().has_password;
  for (const keystore::Entry& e : ks.value().entries) d.names.push_back(e.name);
  std::sort(d.names.begin(), d.names.end());
  return d;
}

Status KeystoreService::CheckReady() {
  auto product = ResolveProduct();
  if (!product.ok()) return product.error();
  const fs::path dir = options_.config_dir;
  struct statvfs fs_info;
  if (::statvfs(dir.c_str(), &fs_info) == 0 && (fs_info.f_flag & ST_RDONLY) != 0) {
    return MakeError(kDirReadOnlyMount, dir.string() + " is on a read-only mount");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return MakeError(kDirNotWritable,
                     dir.string() + " is not writable by uid " + std::to_string(::geteuid()));
  }
  // Every write lists the directory for the temporary files a killed write left.
  if (::access(dir.c_str(), R_OK) != 0) {
    return MakeError(kDirNotListable, dir.string() + " cannot be listed by uid " +
                                          std::to_string(::geteuid()) +
                                          " (it needs read permission too), so every write "
                                          "would fail with KEYSTORE_READ_FAILED");
  }
  const fs::path path = KeystorePath(dir, product.value());
  if (Status s = CheckNotRootInOthersDirectory(); !s.ok()) return s;
  if (Status owner = storage::CheckOwner(path); !owner.ok()) return owner.error();
  if (Status lock = CheckLockFileUsable(path); !lock.ok()) return lock;
  auto bytes = storage::ReadFileIfExists(path);
  if (!bytes.ok()) return bytes.error();
  if (bytes.value()) {
    if (Status s = CheckKeystoreOpensHere(path, *bytes.value(), product.value()); !s.ok()) {
      return s;
    }
  }
  if (options_.check_node) return options_.check_node();
  return Ok{};
}

Status KeystoreService::CheckKeystoreOpensHere(const fs::path& path, const std::string& bytes,
                                               Product product) const {
  // Structure and checksum only: no key derivation, so a probe stays cheap.
  auto envelope = keystore::DecodeEnvelope(bytes, product);
  // The cli backend is there for formats the codec does not know: the tool checks those.
  const bool tool_knows_more =
      options_.cli && !envelope.ok() && envelope.error().code == keystore::kFormatUnsupported;
  if (!envelope.ok() && !tool_knows_more) return InFile(path, envelope.error());
  auto header = keystore::PeekHeader(bytes, product);
  if (header && header->has_password && !options_.password_file) {
    return MakeError(
        keystore::kPasswordIncorrect,
        path.string() + " has a password and the agent has none (--keystore-password-file)");
  }
  // The file is read, not kept: whether a write could read it now.
  auto password = ReadPassword();
  if (!password.ok()) return password.error();
  crypto::Cleanse(password.value());
  return Ok{};
}

// The lock file is the engines' user's to create; one there must be a regular file (FileLock
// refuses a link) that the agent can at least read, which flock(2) needs (FileLock opens
// another user's lock file read-only).
Status KeystoreService::CheckLockFileUsable(const fs::path& keystore_path) {
  const fs::path lock = keystore_path.string() + ".lock";
  struct stat st;
  if (::lstat(lock.c_str(), &st) != 0) return Ok{};  // none yet: a write creates it
  if (!S_ISREG(st.st_mode)) {
    return MakeError(storage::kLockFailed, lock.string() + " is not a regular file");
  }
  if (::access(lock.c_str(), R_OK) != 0) {
    return MakeError(storage::kLockFailed,
                     lock.string() + " cannot be read by uid " + std::to_string(::geteuid()));
  }
  return Ok{};
}

// An agent run as root in the engine user's config directory would create a keystore and a
// lock that the engine cannot read, and that the agent run rightly later refuses.
Status KeystoreService::CheckNotRootInOthersDirectory() const {
  struct stat st;
  if (::geteuid() != 0 || ::stat(options_.config_dir.c_str(), &st) != 0 || st.st_uid == 0) {
    return Ok{};
  }
  return MakeError(storage::kOwnerMismatch,
                   "the agent runs as root, but " + options_.config_dir.string() +
                       " belongs to uid " + std::to_string(st.st_uid) +
                       ": run the agent as that user (the engine's), so that the files it "
                       "writes stay the engine's");
}

Result<keystore::Keystore> KeystoreService::LoadOrCreate(const std::optional<std::string>& file,
                                                         Product product,
                                                         const std::string& password) {
  // An existing file keeps its format: never upgraded or downgraded behind the node's back.
  if (file) return keystore::Open(*file, product, password);
  auto format = FormatForNewKeystore(product);
  if (!format.ok()) return format.error();
  auto salt = crypto::RandomBytes(keystore::kSaltSize);
  if (!salt.ok()) return salt.error();
  auto seed = NewSeed();
  if (!seed.ok()) return seed.error();
  auto ks = keystore::CreateEmpty(product, format.value(), password, std::move(salt.value()));
  if (ks.ok()) ks.value().Set("keystore.seed", seed.value());  // as the engines' create does
  return ks;
}

Result<int> KeystoreService::RemoveStaleTemporaries() {
  std::optional<Product> product = DetectProductLocally();
  if (!product) return 0;  // no keystore and no engine config yet: nothing can be stale
  // The same checks as a write's, before the lock file is created: a root-owned lock in the
  // engine user's directory would keep that user from ever writing.
  if (Status s = CheckNotRootInOthersDirectory(); !s.ok()) return s.error();
  const fs::path path = KeystorePath(options_.config_dir, *product);
  if (Status owner = storage::CheckOwner(path); !owner.ok()) return owner.error();
  auto lock = storage::FileLock::Acquire(path.string() + ".lock", kLockTimeout);
  if (!lock.ok()) return lock.error();
  return storage::RemoveStaleTemporaries(path);
}

KeystoreHealth KeystoreService::Health() {
  KeystoreHealth health;
  std::optional<Product> product = DetectProductLocally();
  if (!product) {
    std::lock_guard lock(engine_mutex_);
    if (node_engine_) product = node_engine_->product;
  }
  if (!product) return health;
  health.path = KeystorePath(options_.config_dir, *product);
  // The header alone is read: /health answers on the network thread, for every probe.
  auto bytes = storage::ReadFilePrefixIfExists(*health.path, keystore::kHeaderPeekBytes);
  if (!bytes.ok()) {  // a link, a FIFO, a directory, unreadable: there, but no keystore to use
    health.exists = true;
    health.problem = bytes.error().code;
  } else if (bytes.value()) {
    health.exists = true;
    // No checksum or decryption either: it names a format the codec does not know.
    if (auto header = keystore::PeekHeader(*bytes.value(), *product)) {
      health.format_version = header->version;
      health.has_password = header->has_password;
    }
  }
  return health;
}

}  // namespace agent::service
