// File handling: atomic replacement, modes, the owner check, the lock, and that a failed
// write leaves the old file untouched.
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcntl.h>
#include <atomic>
#include <chrono>
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

TEST(KeystoreFile, ReplaceWritesTheBytesWithMode0660AndLeavesNoTemporaryFile) {
  TempDir dir;
  const fs::path path = dir.path() / "elasticsearch.keystore";
  WriteFile(path, "old");
  ASSERT_TRUE(ReplaceAtomically(path, std::string("new\0bytes", 9)).ok());
  EXPECT_EQ(ReadFileOrEmpty(path), std::string("new\0bytes", 9));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(CountFiles(dir.path()), 1u);
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
  auto held = FileLock::Acquire(lock_path);
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
    auto lock = FileLock::Acquire(lock_path);
    ASSERT_TRUE(lock.ok());
    first_holds = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    first_released = true;
  });  // the lock is released when `lock` goes out of scope, after first_released is set
  while (!first_holds) std::this_thread::yield();
  std::thread second([&] {
    auto lock = FileLock::Acquire(lock_path);
    ASSERT_TRUE(lock.ok());
    second_saw_release = first_released.load();
  });
  first.join();
  second.join();
  EXPECT_TRUE(second_saw_release);
}

}  // namespace
}  // namespace agent::storage
