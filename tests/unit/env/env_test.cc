// PosixEnv (Env::Default) against a fresh temporary directory.
#include "base/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>

namespace etcdpp {
namespace {

class PosixEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "env_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(PosixEnvTest, WriteSyncReadBack) {
  std::string path = JoinPath(dir_, "f");
  auto f = env_->NewWritableFile(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Append("hello ").ok());
  ASSERT_TRUE((*f)->Append("world").ok());
  EXPECT_EQ((*f)->Position(), 11u);
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_TRUE(env_->FileExists(path));
  EXPECT_EQ(*env_->ReadFile(path), "hello world");
  EXPECT_EQ(*env_->GetFileSize(path), 11u);
}

TEST_F(PosixEnvTest, PreallocateZeroFillsAndOpenAtOffsetOverwritesInPlace) {
  std::string path = JoinPath(dir_, "seg");
  {
    auto f = env_->NewWritableFile(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Preallocate(4096).ok());
    EXPECT_EQ((*f)->Position(), 0u);
    ASSERT_TRUE((*f)->Append("abc").ok());
    ASSERT_TRUE((*f)->Preallocate(100).ok());  // Never shrinks.
  }
  std::string data = *env_->ReadFile(path);
  ASSERT_EQ(data.size(), 4096u);
  EXPECT_EQ(data.substr(0, 3), "abc");
  EXPECT_TRUE(std::all_of(data.begin() + 3, data.end(), [](char c) { return c == 0; }));

  auto f = env_->OpenWritableFile(path, 2);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE((*f)->Append("XY").ok());
  ASSERT_TRUE((*f)->Truncate(6).ok());
  EXPECT_EQ(*env_->ReadFile(path), std::string("abXY\0\0", 6));
}

TEST_F(PosixEnvTest, DirectoryOperations) {
  std::string sub = JoinPath(dir_, "a/b/c");
  ASSERT_TRUE(env_->CreateDir(sub).ok());
  ASSERT_TRUE(env_->CreateDir(sub).ok());  // Idempotent.
  ASSERT_TRUE(WriteFileAtomically(env_, JoinPath(sub, "x"), "payload").ok());
  auto children = env_->GetChildren(sub);
  ASSERT_TRUE(children.ok());
  EXPECT_EQ(*children, std::vector<std::string>{"x"});  // No .tmp left behind.
  ASSERT_TRUE(env_->RenameFile(JoinPath(sub, "x"), JoinPath(sub, "y")).ok());
  ASSERT_TRUE(env_->SyncDir(sub).ok());
  EXPECT_FALSE(env_->FileExists(JoinPath(sub, "x")));
  EXPECT_EQ(*env_->ReadFile(JoinPath(sub, "y")), "payload");
  ASSERT_TRUE(env_->Truncate(JoinPath(sub, "y"), 3).ok());
  EXPECT_EQ(*env_->ReadFile(JoinPath(sub, "y")), "pay");
  ASSERT_TRUE(env_->RemoveFile(JoinPath(sub, "y")).ok());
  EXPECT_EQ(env_->RemoveFile(JoinPath(sub, "y")).code(), Code::kNotFound);
  EXPECT_EQ(env_->ReadFile(JoinPath(sub, "y")).status().code(), Code::kNotFound);
}

TEST_F(PosixEnvTest, LockIsExclusiveUntilReleased) {
  std::string path = JoinPath(dir_, "LOCK");
  auto first = env_->LockFile(path);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = env_->LockFile(path);
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  first->reset();
  EXPECT_TRUE(env_->LockFile(path).ok());
}

TEST(PathTest, JoinAndDirName) {
  EXPECT_EQ(JoinPath("a", "b"), "a/b");
  EXPECT_EQ(JoinPath("a/", "b"), "a/b");
  EXPECT_EQ(DirName("a/b/c"), "a/b");
  EXPECT_EQ(DirName("/c"), "/");
  EXPECT_EQ(DirName("c"), ".");
}

}  // namespace
}  // namespace etcdpp
