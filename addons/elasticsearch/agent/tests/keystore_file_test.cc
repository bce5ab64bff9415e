// File handling: atomic replacement, modes, the owner check, the lock, and that a failed
// write leaves the old file untouched.
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>

#include "storage/keystore_file.h"
#include "test_util.h"

namespace agent::storage {
namespace {

namespace fs = std::filesystem;
using agent::testing::ReadFileOrEmpty;
using agent::testing::TempDir;
using agent::testing::WriteFile;

size_t CountFiles(const fs::path& dir) {
  return static_cast<size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(KeystoreFile, ReadOfAMissingFileIsNotAnError) {
  TempDir dir;
  auto r = ReadFileIfExists(dir.path() / "nope");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.value().has_value());
}

TEST(KeystoreFile, ANewFileGetsMode0660AndLeavesNoTemporaryFile) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  ASSERT_TRUE(ReplaceAtomically(path, std::string("new\0bytes", 9)).ok());
  EXPECT_EQ(ReadFileOrEmpty(path), std::string("new\0bytes", 9));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(CountFiles(dir.path()), 1u);
}

TEST(KeystoreFile, AReplacedFileKeepsItsModeAndGroup) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  WriteFile(path, "old");
  ASSERT_EQ(::chmod(path.c_str(), 0640), 0);
  // A group other than the process's own: root may give any (nogroup), others one of theirs.
  gid_t other = ::getegid();
  if (::geteuid() == 0) {
    other = 65534;
  } else {
    gid_t groups[64];
    const int n = ::getgroups(64, groups);
    for (int i = 0; i < n; ++i) {
      if (groups[i] != ::getegid()) other = groups[i];
    }
  }
  ASSERT_EQ(::chown(path.c_str(), static_cast<uid_t>(-1), other), 0);
  ASSERT_TRUE(ReplaceAtomically(path, "new").ok());
  EXPECT_EQ(ReadFileOrEmpty(path), "new");
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
  EXPECT_EQ(st.st_gid, other);
  // A mode that would lock the owner out is widened for the owner only.
  ASSERT_EQ(::chmod(path.c_str(), 0040), 0);
  ASSERT_TRUE(ReplaceAtomically(path, "newer").ok());
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST(KeystoreFile, AFailedRenameKeepsTheOldStateAndCleansUp) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  fs::create_directory(path);  // rename(2) of a file over a directory fails
  auto s = ReplaceAtomically(path, "bytes");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kWriteFailed);
  EXPECT_NE(s.error().message.find(path.string()), std::string::npos);
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_EQ(CountFiles(dir.path()), 1u);
}

TEST(KeystoreFile, RefusesToReplaceAFileOfAnotherOwner) {
  if (::geteuid() != 0) GTEST_SKIP() << "skipped: needs root to give a file to another user";
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  WriteFile(path, "theirs");
  ASSERT_EQ(::chown(path.c_str(), 4321, 4321), 0);
  auto s = ReplaceAtomically(path, "mine");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, kOwnerMismatch);
  EXPECT_NE(s.error().message.find("uid 4321"), std::string::npos);
  EXPECT_EQ(ReadFileOrEmpty(path), "theirs");
  EXPECT_EQ(CountFiles(dir.path()), 1u);
}

TEST(KeystoreFile, TheLockExcludesOtherDescriptors) {
  TempDir dir;
  const fs::path lock_path = dir.path() / "k.lock";
  auto held = FileLock::Acquire(lock_path, std::chrono::seconds(10));
  ASSERT_TRUE(held.ok());
  // Another process's descriptor (here: another open of the same file) cannot take it.
  UniqueFd other(::open(lock_path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(other.valid());
  EXPECT_NE(::flock(other.get(), LOCK_EX | LOCK_NB), 0);
  EXPECT_EQ(errno, EWOULDBLOCK);
}

TEST(KeystoreFile, ASecondThreadWaitsForTheLock) {
  TempDir dir;
  const fs::path lock_path = dir.path() / "k.lock";
  std::atomic<bool> first_holds{false};
  std::atomic<bool> first_released{false};
  std::atomic<bool> second_saw_release{false};
  std::thread first([&] {
    auto lock = FileLock::Acquire(lock_path, std::chrono::seconds(10));
    ASSERT_TRUE(lock.ok());
    first_holds = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    first_released = true;
  });  // the lock is released when `lock` goes out of scope, after first_released is set
  while (!first_holds) std::this_thread::yield();
  std::thread second([&] {
    auto lock = FileLock::Acquire(lock_path, std::chrono::seconds(10));
    ASSERT_TRUE(lock.ok());
    second_saw_release = first_released.load();
  });
  first.join();
  second.join();
  EXPECT_TRUE(second_saw_release);
}

TEST(KeystoreFile, TheLockWaitEndsAtItsTimeout) {
  TempDir dir;
  const fs::path lock_path = dir.path() / "k.lock";
  auto held = FileLock::Acquire(lock_path, std::chrono::seconds(1));
  ASSERT_TRUE(held.ok());
  auto second = FileLock::Acquire(lock_path, std::chrono::milliseconds(100));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, kLockTimeout);
}

TEST(KeystoreFile, ALockFileOfAnotherUserIsOpenedReadOnly) {
  if (::geteuid() != 0) GTEST_SKIP() << "skipped: needs root to act as two users";
  TempDir dir;
  const fs::path lock_path = dir.path() / "k.lock";
  WriteFile(lock_path, "");
  ASSERT_EQ(::chown(lock_path.c_str(), 0, 0), 0);
  ASSERT_EQ(::chmod(lock_path.c_str(), 0644), 0);  // readable, not writable, by the other user
  ASSERT_EQ(::chmod(dir.path().c_str(), 0777), 0);
  pid_t pid = fork();
  if (pid == 0) {  // as another user, who may read but not write the lock file
    if (::setgid(4321) != 0 || ::setuid(4321) != 0) _exit(3);
    auto lock = FileLock::Acquire(lock_path, std::chrono::seconds(1));
    _exit(lock.ok() ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(KeystoreFile, AnythingButARegularFileIsRefusedWithoutBlocking) {
  TempDir dir;
  const fs::path fifo = dir.path() / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = ReadFileIfExists(fifo);  // would block forever without O_NONBLOCK
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kNotAFile);
  fs::create_directory(dir.path() / "d");
  EXPECT_EQ(ReadFileIfExists(dir.path() / "d").error().code, kNotAFile);
  WriteFile(dir.path() / "target", "x");
  fs::create_symlink(dir.path() / "target", dir.path() / "link");
  EXPECT_EQ(ReadFileIfExists(dir.path() / "link").error().code, kNotAFile);
}

TEST(KeystoreFile, AUnixSocketIsNotAFile) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  UniqueFd socket_fd(::socket(AF_UNIX, SOCK_STREAM, 0));
  ASSERT_TRUE(socket_fd.valid());
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(path.string().size(), sizeof address.sun_path);
  std::strcpy(address.sun_path, path.c_str());
  ASSERT_EQ(::bind(socket_fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  auto r = ReadFileIfExists(path);  // open(2) fails with ENXIO
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, kNotAFile) << r.error().message;
  EXPECT_EQ(ReadFileIfExists(path, Links::kFollow).error().code, kNotAFile);
}

}  // namespace
}  // namespace agent::storage
