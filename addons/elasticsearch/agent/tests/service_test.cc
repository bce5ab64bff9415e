// KeystoreService on real files: creating, updating and refusing, with every other entry and
// the file's format kept, and nothing written when anything is wrong.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "keystore/codec.h"
#include "service/keystore_service.h"
#include "test_util.h"

namespace agent::service {
namespace {

namespace fs = std::filesystem;
using agent::testing::ReadFileOrEmpty;
using agent::testing::TempDir;
using agent::testing::WriteFile;
using keystore::Product;

const fs::path kTestdata = AGENT_SHARED_TESTDATA;

S3Credentials Creds(std::string client, std::string access, std::string secret,
                    std::optional<std::string> token = std::nullopt) {
  S3Credentials c;
  c.client = std::move(client);
  c.access_key = std::move(access);
  c.secret_key = std::move(secret);
  c.session_token = std::move(token);
  return c;
}

keystore::Keystore Load(const fs::path& path, Product product, const std::string& password = "") {
  auto ks = keystore::Open(ReadFileOrEmpty(path), product, password);
  EXPECT_TRUE(ks.ok()) << ks.error().message;
  return std::move(ks.value());
}

TEST(Service, CreatesAKeystoreInTheFormatOfTheEngineVersionWithASeed) {
  TempDir dir;
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("default", "AK", "SK"));
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(w.value().created);
  EXPECT_EQ(w.value().format_version, 6);
  EXPECT_EQ(w.value().keystore, dir.path() / "elasticsearch.keystore");
  EXPECT_EQ(w.value().settings, (std::vector<std::string>{"s3.client.default.access_key",
                                                          "s3.client.default.secret_key"}));
  auto ks = Load(w.value().keystore, Product::kElasticsearch);
  EXPECT_EQ(ks.version, 6);
  ASSERT_NE(ks.Find("keystore.seed"), nullptr);
  EXPECT_EQ(ks.Find("keystore.seed")->value.size(), 20u);
  EXPECT_EQ(ks.Find("s3.client.default.secret_key")->value, "SK");
  EXPECT_EQ(w.value().sha256.size(), 64u);
}

TEST(Service, APasswordFileMountedFromASecretIsReadThroughItsLinks) {
  TempDir dir;
  // kubelet's layout: password -> ..data/password, ..data -> ..2026_12_03/
  fs::create_directory(dir.path() / "..2026_12_03");
  WriteFile(dir.path() / "..2026_12_03" / "password", "linked-pass\n");
  fs::create_directory_symlink("..2026_12_03", dir.path() / "..data");
  fs::create_symlink("..data/password", dir.path() / "password");
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", dir.path() / "password",
                       nullptr, nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("default", "AK", "SK"));
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_TRUE(Load(dir.path() / "elasticsearch.keystore", Product::kElasticsearch, "linked-pass")
                  .has_password);
  EXPECT_EQ(svc.ReloadPassword().value(), "linked-pass");
}

TEST(Service, DetectsOpenSearchFromItsConfigFile) {
  TempDir dir;
  WriteFile(dir.path() / "opensearch.yml", "cluster.name: x\n");
  KeystoreService svc(
      {dir.path(), std::nullopt, "2.19.1", std::nullopt, nullptr, nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w.value().keystore, dir.path() / "opensearch.keystore");
  EXPECT_EQ(w.value().format_version, 4);
}

TEST(Service, AsksTheNodeWhenNothingLocalTells) {
  TempDir dir;
  int calls = 0;
  // The node's answer is the seam here; the real node answers in the end-to-end tests.
  auto node = [&calls]() -> Result<EngineInfo> {
    ++calls;
    return EngineInfo{Product::kOpenSearch, "2.19.1"};
  };
  KeystoreService svc(
      {dir.path(), std::nullopt, std::nullopt, std::nullopt, node, nullptr, std::nullopt});
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("c", "AK", "SK")).ok());
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("c", "AK2", "SK2")).ok());
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(fs::exists(dir.path() / "opensearch.keystore"));
}

TEST(Service, WithoutAnyWayToTellTheEngineItRefusesAndWritesNothing) {
  TempDir dir;
  KeystoreService svc(
      {dir.path(), std::nullopt, std::nullopt, std::nullopt, nullptr, nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, kEngineUnknown);
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(Service, ReplacesTheClientAsOneSetAndRemovesAStaleSessionToken) {
  TempDir dir;
  KeystoreService svc(
      {dir.path(), Product::kOpenSearch, "2.19.1", std::nullopt, nullptr, nullptr, std::nullopt});
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("a", "AK1", "SK1", "TOKEN")).ok());
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("b", "BK", "BS")).ok());
  auto w = svc.WriteS3Credentials(Creds("a", "AK2", "SK2"));
  ASSERT_TRUE(w.ok());
  auto ks = Load(w.value().keystore, Product::kOpenSearch);
  EXPECT_EQ(ks.Find("s3.client.a.access_key")->value, "AK2");
  EXPECT_EQ(ks.Find("s3.client.a.secret_key")->value, "SK2");
  EXPECT_EQ(ks.Find("s3.client.a.session_token"), nullptr);
  EXPECT_EQ(ks.Find("s3.client.b.access_key")->value, "BK");
  EXPECT_EQ(ks.entries.size(), 5u);  // seed + a's two + b's two
}

class ServiceOnEngineFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTestdata / "MANIFEST.md")) {
      GTEST_SKIP() << "skipped: " << kTestdata.string() << " is absent";
    }
  }
};

TEST_F(ServiceOnEngineFiles, KeepsEveryEntryAndTheFormatOfAnEngineWrittenFile) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  fs::copy_file(kTestdata / "real/es-v5-nopassword-s3example.keystore", path);
  // The engine version says 9.x (format 7), but the file is format 5: it stays 5.
  KeystoreService svc(
      {dir.path(), std::nullopt, "9.1.0", std::nullopt, nullptr, nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("kb_job", "AK", "SK"));
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_FALSE(w.value().created);
  auto ks = Load(path, Product::kElasticsearch);
  EXPECT_EQ(ks.version, 5);
  EXPECT_EQ(ks.Find("keystore.seed")->value, "+q0yVZgCJLi_A%wBPKMY");
  EXPECT_EQ(ks.Find("s3.client.default.access_key")->value, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(ks.Find("s3.client.kb_job.access_key")->value, "AK");
  EXPECT_EQ(ks.entries.size(), 5u);
}

TEST_F(ServiceOnEngineFiles, UsesThePasswordFileAndRefusesAWrongPasswordWritingNothing) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  fs::copy_file(kTestdata / "synthetic/synthetic-v7-password.keystore", path);
  const std::string before = ReadFileOrEmpty(path);

  WriteFile(dir.path() / "pw", "keystorepassword\n");  // one trailing newline is stripped
  KeystoreService good(
      {dir.path(), std::nullopt, std::nullopt, dir.path() / "pw", nullptr, nullptr, std::nullopt});
  auto w = good.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto ks = Load(path, Product::kElasticsearch, "keystorepassword");
  EXPECT_EQ(ks.version, 7);
  EXPECT_TRUE(ks.has_password);
  EXPECT_EQ(ks.Find("file_setting")->value.size(), 256u);

  const std::string after = ReadFileOrEmpty(path);
  WriteFile(dir.path() / "bad", "wrong");
  KeystoreService bad(
      {dir.path(), std::nullopt, std::nullopt, dir.path() / "bad", nullptr, nullptr, std::nullopt});
  auto refused = bad.WriteS3Credentials(Creds("c", "AK3", "SK3"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, keystore::kPasswordIncorrect);
  EXPECT_NE(refused.error().message.find(path.string()), std::string::npos);
  EXPECT_EQ(ReadFileOrEmpty(path), after);
  EXPECT_NE(before, after);
}

TEST_F(ServiceOnEngineFiles, AnUnprotectedKeystoreIsOpenedWithoutThePasswordAsTheEnginesDo) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  fs::copy_file(kTestdata / "synthetic/synthetic-v7-nopassword.keystore", path);
  WriteFile(dir.path() / "pw", "configured-but-unused");
  KeystoreService svc(
      {dir.path(), std::nullopt, std::nullopt, dir.path() / "pw", nullptr, nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto ks = Load(path, Product::kElasticsearch, "");
  EXPECT_FALSE(ks.has_password);
  EXPECT_EQ(ks.Find("keystore.seed")->value, "Synth3tic_Seed-0007n");
}

TEST_F(ServiceOnEngineFiles, RefusesCorruptTooOldAndTooNewFilesWritingNothing) {
  const std::pair<const char*, const char*> cases[] = {
      {"synthetic/negative/neg-bad-crc.keystore", keystore::kCorrupt},
      {"real/es-v2-nopassword.keystore", keystore::kFormatTooOld},
      {"synthetic/negative/neg-version-8-too-new.keystore", keystore::kFormatUnsupported},
  };
  for (const auto& [file, code] : cases) {
    SCOPED_TRACE(file);
    TempDir dir;
    const fs::path path = dir.path() / "elasticsearch.keystore";
    fs::copy_file(kTestdata / file, path);
    const std::string before = ReadFileOrEmpty(path);
    KeystoreService svc(
        {dir.path(), std::nullopt, "8.15.0", std::nullopt, nullptr, nullptr, std::nullopt});
    auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.error().code, code);
    EXPECT_EQ(ReadFileOrEmpty(path), before);
  }
}

TEST(Service, AKeystoreOfAnotherUserIsRefusedBeforeAnythingIsCreated) {
  if (::geteuid() != 0) GTEST_SKIP() << "skipped: needs root to give a file to another user";
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  WriteFile(path, "theirs");
  ASSERT_EQ(::chown(path.c_str(), 4321, 4321), 0);
  KeystoreService svc(
      {dir.path(), Product::kElasticsearch, "8.1.0", std::nullopt, nullptr, nullptr, std::nullopt});
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, "KEYSTORE_OWNER_MISMATCH");
  EXPECT_FALSE(fs::exists(dir.path() / "elasticsearch.keystore.lock"));
}

TEST(Service, ReadyNamesWhatAWriteWouldTripOver) {
  TempDir dir;
  const fs::path password_file = dir.path() / "password";
  WriteFile(password_file, "pw\n");
  KeystoreService with_password({dir.path(), Product::kElasticsearch, "8.15.0", password_file,
                                 nullptr, nullptr, std::nullopt});
  ASSERT_TRUE(with_password.WriteS3Credentials(Creds("c", "AK", "SK")).ok());
  ASSERT_TRUE(with_password.CheckReady().ok());
  EXPECT_EQ(with_password.Health().has_password, true);  // the header's byte, no decryption
  // The password file went away (a Secret not mounted yet, or removed).
  fs::remove(password_file);
  Status gone = with_password.CheckReady();
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, "KEYSTORE_PASSWORD_FILE_UNREADABLE");
  // A password-protected keystore and an agent with no password file.
  KeystoreService without_password({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt,
                                    nullptr, nullptr, std::nullopt});
  Status none = without_password.CheckReady();
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, "KEYSTORE_PASSWORD_INCORRECT");
  EXPECT_NE(none.error().message.find("--keystore-password-file"), std::string::npos);
  if (::geteuid() == 0) {  // root can give the file to another user
    ASSERT_EQ(::chown((dir.path() / "elasticsearch.keystore").c_str(), 4321, 4321), 0);
    Status theirs = with_password.CheckReady();
    ASSERT_FALSE(theirs.ok());
    EXPECT_EQ(theirs.error().code, "KEYSTORE_OWNER_MISMATCH");
  }
}

TEST(Service, ReadyRefusesALockFileThatIsNotAFile) {
  TempDir dir;
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  ASSERT_TRUE(svc.CheckReady().ok());
  fs::create_directory(dir.path() / "elasticsearch.keystore.lock");
  Status ready = svc.CheckReady();
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.error().code, "KEYSTORE_LOCK_FAILED");
  EXPECT_FALSE(svc.WriteS3Credentials(Creds("c", "AK", "SK")).ok());  // as the write finds
  fs::remove(dir.path() / "elasticsearch.keystore.lock");
  fs::create_symlink("/etc/passwd", dir.path() / "elasticsearch.keystore.lock");
  EXPECT_EQ(svc.CheckReady().error().code, "KEYSTORE_LOCK_FAILED");
}

TEST(Service, RootRefusesToWriteInTheEngineUsersDirectory) {
  if (::geteuid() != 0) GTEST_SKIP() << "skipped: needs root";
  TempDir dir;
  ASSERT_EQ(::chown(dir.path().c_str(), 4321, 4321), 0);
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  Status ready = svc.CheckReady();
  ASSERT_FALSE(ready.ok());
  EXPECT_EQ(ready.error().code, "KEYSTORE_OWNER_MISMATCH");
  EXPECT_NE(ready.error().message.find("uid 4321"), std::string::npos);
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, "KEYSTORE_OWNER_MISMATCH");
  EXPECT_FALSE(fs::exists(dir.path() / "elasticsearch.keystore"));
  EXPECT_FALSE(fs::exists(dir.path() / "elasticsearch.keystore.lock"));
}

// CheckReady's error code in a config directory of mode 0355 (searchable and writable, not
// readable), as seen by a user other than root, whom no mode stops; "" when ready.
std::string ReadyCodeInAnUnlistableDirectory(const fs::path& dir) {
  KeystoreService svc(
      {dir, Product::kElasticsearch, "8.15.0", std::nullopt, nullptr, nullptr, std::nullopt});
  Status ready = svc.CheckReady();
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  // The write fails as /ready says it would.
  if (w.ok() || w.error().code != "KEYSTORE_READ_FAILED") return "write: not KEYSTORE_READ_FAILED";
  return ready.ok() ? "" : ready.error().code;
}

TEST(Service, ReadyRefusesAConfigDirectoryThatCannotBeListed) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0355), 0);
  if (::geteuid() != 0) {
    EXPECT_EQ(ReadyCodeInAnUnlistableDirectory(dir.path()), "KEYSTORE_DIR_NOT_LISTABLE");
    ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
    return;
  }
  ASSERT_EQ(::chown(dir.path().c_str(), 4321, 4321), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the child becomes the directory's owner, as the engine's user would be
    ::close(pipe_fds[0]);
    std::string code = "setuid failed";
    if (::setgid(4321) == 0 && ::setuid(4321) == 0)
      code = ReadyCodeInAnUnlistableDirectory(dir.path());
    ssize_t n = ::write(pipe_fds[1], code.data(), code.size());
    _exit(n == static_cast<ssize_t>(code.size()) ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::string code;
  char buf[256];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;)
    code.append(buf, static_cast<size_t>(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(code, "KEYSTORE_DIR_NOT_LISTABLE");
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
}

TEST(Service, RootCleansUpNothingInTheEngineUsersDirectoryAtStart) {
  if (::geteuid() != 0) GTEST_SKIP() << "skipped: needs root";
  TempDir dir;
  const fs::path stale = dir.path() / ".elasticsearch.keystore.agent-Ab12Cd";
  WriteFile(stale, "half");
  ASSERT_EQ(::chown(dir.path().c_str(), 4321, 4321), 0);
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  auto removed = svc.RemoveStaleTemporaries();
  ASSERT_FALSE(removed.ok());
  EXPECT_EQ(removed.error().code, "KEYSTORE_OWNER_MISMATCH");
  // No root-owned lock file that would keep the engine's user from ever writing.
  EXPECT_FALSE(fs::exists(dir.path() / "elasticsearch.keystore.lock"));
  EXPECT_TRUE(fs::exists(stale));
}

TEST(Service, ConcurrentWritersAllLand) {
  TempDir dir;
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.10.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&svc, i] {
      auto w = svc.WriteS3Credentials(Creds("c" + std::to_string(i), "AK", "SK"));
      EXPECT_TRUE(w.ok());
    });
  }
  for (auto& t : threads) t.join();
  auto ks = Load(dir.path() / "elasticsearch.keystore", Product::kElasticsearch);
  EXPECT_EQ(ks.entries.size(), 1u + 8 * 2);
}

TEST(Service, HealthReportsTheKeystore) {
  TempDir dir;
  KeystoreService svc({dir.path(), Product::kElasticsearch, "7.17.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  EXPECT_FALSE(svc.Health().exists);
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("c", "AK", "SK")).ok());
  KeystoreHealth h = svc.Health();
  EXPECT_TRUE(h.exists);
  EXPECT_EQ(h.format_version, 4);
  EXPECT_EQ(h.path, dir.path() / "elasticsearch.keystore");
  EXPECT_FALSE(h.problem);
}

TEST(Service, HealthSaysWhatIsInTheWayOfAKeystoreThatIsNoFile) {
  TempDir dir;
  KeystoreService svc({dir.path(), Product::kElasticsearch, "7.17.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  const auto path = dir.path() / "elasticsearch.keystore";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  KeystoreHealth fifo = svc.Health();
  EXPECT_TRUE(fifo.exists);
  EXPECT_EQ(fifo.problem, "KEYSTORE_NOT_A_FILE");
  EXPECT_FALSE(fifo.format_version);
  std::filesystem::remove(path);
  std::filesystem::create_symlink(dir.path() / "elsewhere", path);
  EXPECT_TRUE(svc.Health().exists);  // even a dangling link is in the way of a write
  EXPECT_EQ(svc.Health().problem, "KEYSTORE_NOT_A_FILE");
}

// Bytes this process has read so far (rchar: every read(2), whatever the file).
long long BytesReadByThisProcess() {
  std::istringstream io(ReadFileOrEmpty("/proc/self/io"));
  std::string key;
  long long value = -1;
  while (io >> key >> value) {
    if (key == "rchar:") return value;
  }
  return -1;
}

TEST(Service, HealthReadsTheHeaderNotTheWholeKeystore) {
  TempDir dir;
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("c", "AK", std::string(8 << 20, 'x'))).ok());
  ASSERT_GT(fs::file_size(dir.path() / "elasticsearch.keystore"), 8u << 20);
  if (BytesReadByThisProcess() < 0) GTEST_SKIP() << "skipped: no /proc/self/io here";
  const long long before = BytesReadByThisProcess();
  KeystoreHealth h = svc.Health();
  const long long read = BytesReadByThisProcess() - before;
  EXPECT_TRUE(h.format_version.has_value());
  EXPECT_EQ(h.has_password, false);
  EXPECT_FALSE(h.problem);
  EXPECT_LT(read, 64 * 1024) << "Health read " << read << " bytes";  // /proc/self/io too
}

TEST(Service, AUnixSocketAtTheKeystorePathIsNotAFile) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  storage::UniqueFd socket_fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(path.string().size(), sizeof address.sun_path);
  std::strcpy(address.sun_path, path.c_str());
  ASSERT_EQ(::bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  KeystoreService svc({dir.path(), Product::kElasticsearch, "8.15.0", std::nullopt, nullptr,
                       nullptr, std::nullopt});
  EXPECT_EQ(svc.Health().problem, "KEYSTORE_NOT_A_FILE");
  auto w = svc.WriteS3Credentials(Creds("c", "AK", "SK"));
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, "KEYSTORE_NOT_A_FILE") << w.error().message;
  EXPECT_EQ(svc.CheckReady().error().code, "KEYSTORE_NOT_A_FILE");
}

TEST(Service, ALinkAtTheKeystorePathTellsTheEngineDanglingOrNot) {
  TempDir dir;
  const auto path = dir.path() / "opensearch.keystore";
  fs::create_symlink(dir.path() / "elsewhere", path);  // dangling
  EXPECT_EQ(DetectProductIn(dir.path()), Product::kOpenSearch);
  KeystoreService svc(
      {dir.path(), std::nullopt, "2.11.0", std::nullopt, nullptr, nullptr, std::nullopt});
  KeystoreHealth h = svc.Health();
  EXPECT_EQ(h.path, path);
  EXPECT_TRUE(h.exists);
  EXPECT_EQ(h.problem, "KEYSTORE_NOT_A_FILE");
  WriteFile(dir.path() / "elsewhere", "");  // the link now leads to a file
  EXPECT_EQ(DetectProductIn(dir.path()), Product::kOpenSearch);
}

}  // namespace
}  // namespace agent::service

namespace agent::service {
namespace {

TEST(Service, TemporaryFilesOfAnInterruptedWriteAreRemovedByTheNextWriteAndAtStart) {
  agent::testing::TempDir dir;
  const auto stale = dir.path() / ".elasticsearch.keystore.agent-Ab12Cd";
  const auto other = dir.path() / "elasticsearch.keystore.tmp";  // the engine's, not ours
  agent::testing::WriteFile(stale, "half");
  agent::testing::WriteFile(other, "engine");
  KeystoreService svc({dir.path(), keystore::Product::kElasticsearch, "8.1.0", std::nullopt,
                       nullptr, nullptr, std::nullopt});
  ASSERT_TRUE(svc.WriteS3Credentials(Creds("c", "AK", "SK")).ok());
  EXPECT_FALSE(std::filesystem::exists(stale));
  EXPECT_TRUE(std::filesystem::exists(other));

  agent::testing::WriteFile(stale, "half");
  auto removed = svc.RemoveStaleTemporaries();
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed.value(), 1);
  EXPECT_FALSE(std::filesystem::exists(stale));
}

}  // namespace
}  // namespace agent::service
