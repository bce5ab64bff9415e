// KeystoreService: the agent's one job. Writes a set of S3 client settings into the node's
// keystore as one locked read-modify-write, keeping every other entry, and reports health.
#pragma once

#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "cli_backend/cli_keystore.h"
#include "common/result.h"
#include "keystore/codec.h"
#include "keystore/format.h"
#include "service/credentials.h"
#include "storage/keystore_file.h"

namespace agent::service {

inline constexpr char kEngineUnknown[] = "ENGINE_UNKNOWN";
inline constexpr char kPasswordFileUnreadable[] = "KEYSTORE_PASSWORD_FILE_UNREADABLE";
inline constexpr char kDirNotWritable[] = "KEYSTORE_DIR_NOT_WRITABLE";
inline constexpr char kDirNotListable[] = "KEYSTORE_DIR_NOT_LISTABLE";
inline constexpr char kDirReadOnlyMount[] = "KEYSTORE_DIR_READ_ONLY";

// What the local node says about itself (GET /).
struct EngineInfo {
  keystore::Product product;
  std::string version;  // "8.15.2"
};

struct ServiceOptions {
  std::filesystem::path config_dir;
  std::optional<keystore::Product> product;            // --engine; otherwise detected
  std::optional<std::string> engine_version;           // --engine-version; otherwise asked
  std::optional<std::filesystem::path> password_file;  // keystore password; empty means none
  // Asks the local node for its engine and version; used only when nothing else tells.
  std::function<Result<EngineInfo>()> fetch_engine_info;
  // For /ready: whether the local node answers (and, where the agent has credentials of its
  // own, accepts them). Unset: not checked.
  std::function<Status()> check_node;
  // Set: changes go through the engine's own keystore tool (--keystore-backend cli), under
  // the same lock; its product and config_dir are filled in by the service.
  std::optional<cli_backend::CliKeystoreOptions> cli;
};

struct WriteResult {
  std::filesystem::path keystore;
  std::vector<std::string> settings;  // names written (or removed), in order
  std::string sha256;                 // of the file as it is now; empty when there is none
  int format_version = 0;             // 0 when there is no file
  bool created = false;
  bool changed = false;  // false when the file already said it (or there was none to change)
};

// What GET /keystore shows: names and a digest, never a value.
struct KeystoreDescription {
  std::filesystem::path path;
  bool exists = false;
  int format_version = 0;
  bool has_password = false;
  std::vector<std::string> names;  // sorted
  std::string sha256;
};

struct KeystoreHealth {
  std::optional<std::filesystem::path> path;  // unknown until the engine is known
  bool exists = false;
  std::optional<int> format_version;   // from the header; nullopt if absent or unreadable
  std::optional<bool> has_password;    // from the header too: no decryption
  std::optional<std::string> problem;  // the error code when something there cannot be read
};

// The engine a config directory shows: its keystore file first, then its config file.
std::optional<keystore::Product> DetectProductIn(const std::filesystem::path& config_dir);

class KeystoreService {
 public:
  explicit KeystoreService(ServiceOptions options);

  Result<WriteResult> WriteS3Credentials(const S3Credentials& credentials);
  // Removes s3.client.<client>.* in one save; a missing keystore or client changes nothing.
  Result<WriteResult> RemoveS3Client(const std::string& client);
  Result<KeystoreDescription> Describe();
  // Ok when a write could succeed now: the engine is known, the config directory is
  // writable, listable and not a read-only mount, the keystore (if any) is the agent's user's,
  // passes its structure and checksum checks and has a readable password file where it has a
  // password, the lock file is usable, and the node answers. Otherwise the reason.
  Status CheckReady();

  // The change a write makes to the decrypted keystore: the names it touched, and whether
  // the file must be saved.
  struct Change {
    std::vector<std::string> names;
    bool changed = false;
  };
  using Mutation = std::function<Change(keystore::Keystore&)>;
  // The one locked read-modify-write that every change goes through: the API's, and the
  // operator commands' (`es-agent keystore ...`).
  Result<WriteResult> Update(const Mutation& mutate, bool create_if_missing);
  KeystoreHealth Health();
  // The password a reload must send: the configured one when the keystore file has a
  // password, "" when it has none (the node refuses a password for such a keystore).
  Result<std::string> ReloadPassword();
  // The engine, when the flags or the config directory tell it without asking the node.
  std::optional<keystore::Product> KnownProduct() const { return DetectProductLocally(); }
  // Removes, under the lock, temporary files that a killed write left; for start-up.
  Result<int> RemoveStaleTemporaries();

 private:
  // flag > which keystore file exists > which engine config file exists > the node's GET /.
  std::optional<keystore::Product> DetectProductLocally() const;
  Result<keystore::Product> ResolveProduct();
  // The node's answer to GET /, asked once and kept (the engine does not change under us).
  Result<EngineInfo> NodeEngine();
  Result<int> FormatForNewKeystore(keystore::Product product);
  Result<std::string> ReadPassword() const;
  // /ready's checks of an existing keystore: structure, checksum, a password where needed.
  Status CheckKeystoreOpensHere(const std::filesystem::path& path, const std::string& bytes,
                                keystore::Product product) const;
  static Status CheckLockFileUsable(const std::filesystem::path& keystore_path);
  Status CheckNotRootInOthersDirectory() const;
  // What a change holds while it runs: the file's engine and path, its password, the lock.
  struct LockedKeystore {
    keystore::Product product;
    std::filesystem::path path;
    std::string password;
    storage::FileLock lock;
    LockedKeystore(keystore::Product p, std::filesystem::path f, std::string pw,
                   storage::FileLock l)
        : product(p), path(std::move(f)), password(std::move(pw)), lock(std::move(l)) {}
    LockedKeystore(LockedKeystore&&) = default;
    ~LockedKeystore();  // wipes the password
  };
  // The start of every change: engine, path, password, owner check, lock, stale temporaries.
  Result<LockedKeystore> LockForChange();
  // The cli backend's Update: the same owner check and lock, then `set` and `remove` through
  // the engine's tool (names to remove that the keystore lacks are skipped).
  Result<WriteResult> UpdateWithTool(const std::vector<cli_backend::CliSetting>& set,
                                     const std::vector<std::string>& remove);
  static Result<std::vector<std::string>> NamesInKeystore(
      const cli_backend::CliKeystoreOptions& cli, const std::filesystem::path& path,
      const std::string& password);
  Result<keystore::Keystore> LoadOrCreate(const std::optional<std::string>& file,
                                          keystore::Product product, const std::string& password);

  ServiceOptions options_;
  std::mutex engine_mutex_;  // guards the cached answer of the node
  std::optional<EngineInfo> node_engine_;
};

}  // namespace agent::service
