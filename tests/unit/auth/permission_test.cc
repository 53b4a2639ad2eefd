#include "auth/permission.h"

#include <gtest/gtest.h>

#include <string>

namespace etcdpp::auth {
namespace {

const std::string kToEnd("\0", 1);

TEST(KeyIntervalSetTest, SingleKeyGrantCoversOnlyThatKey) {
  KeyIntervalSet set;
  set.Add("foo", "");
  EXPECT_TRUE(set.Covers("foo", ""));
  EXPECT_FALSE(set.Covers("fo", ""));
  EXPECT_FALSE(set.Covers("foo0", ""));
  // The range [foo, foo\0) is the key itself.
  EXPECT_TRUE(set.Covers("foo", std::string("foo\0", 4)));
  EXPECT_FALSE(set.Covers("foo", "fop"));
}

TEST(KeyIntervalSetTest, PrefixGrantCoversKeysAndRangesInside) {
  KeyIntervalSet set;
  set.Add("foo", "fop");  // etcdctl's --prefix foo
  EXPECT_TRUE(set.Covers("foo", ""));
  EXPECT_TRUE(set.Covers("foo/bar", ""));
  EXPECT_TRUE(set.Covers("foo", "fop"));
  EXPECT_TRUE(set.Covers("foo/a", "foo/b"));
  EXPECT_FALSE(set.Covers("fop", ""));
  EXPECT_FALSE(set.Covers("fo", "fop"));
  EXPECT_FALSE(set.Covers("foo", "fopa"));
  EXPECT_FALSE(set.Covers("foo", kToEnd));  // unbounded request, bounded grant
}

TEST(KeyIntervalSetTest, FromKeyGrantIsUnbounded) {
  KeyIntervalSet set;
  set.Add("m", kToEnd);
  EXPECT_TRUE(set.Covers("m", kToEnd));
  EXPECT_TRUE(set.Covers("zzzz", ""));
  EXPECT_TRUE(set.Covers("n", "z"));
  EXPECT_FALSE(set.Covers("a", ""));
  EXPECT_FALSE(set.Covers("l", "n"));
}

TEST(KeyIntervalSetTest, TouchingGrantsMergeSoARangeAcrossThemIsCovered) {
  KeyIntervalSet set;
  set.Add("a", "c");
  set.Add("c", "e");
  EXPECT_TRUE(set.Covers("b", "d"));
  EXPECT_TRUE(set.Covers("a", "e"));
  EXPECT_FALSE(set.Covers("a", "f"));
  // A gap is never bridged.
  KeyIntervalSet gap;
  gap.Add("a", "c");
  gap.Add("d", "e");
  EXPECT_FALSE(gap.Covers("b", "d"));
  EXPECT_TRUE(gap.Covers("d", ""));
}

TEST(KeyIntervalSetTest, OverlappingAndNestedGrantsMergeInAnyOrder) {
  KeyIntervalSet set;
  set.Add("k", "m");
  set.Add("a", "b");
  set.Add("l", "q");
  set.Add("n", "o");
  EXPECT_TRUE(set.Covers("k", "q"));
  EXPECT_FALSE(set.Covers("b", ""));
  EXPECT_TRUE(set.Covers("a", ""));
}

TEST(KeyIntervalSetTest, EmptyOrBackwardRangesAreNeverPermitted) {
  KeyIntervalSet set;
  set.Add("", kToEnd);  // everything
  EXPECT_FALSE(set.Covers("b", "a"));
  EXPECT_FALSE(set.Covers("b", "b"));
  EXPECT_TRUE(set.Covers("", kToEnd));
  KeyIntervalSet nothing;
  nothing.Add("z", "a");
  EXPECT_TRUE(nothing.empty());
}

TEST(UserPermissionsTest, RootPermitsEverythingOthersOnlyTheirAccess) {
  UserPermissions root;
  root.root = true;
  EXPECT_TRUE(root.Permits(Access::kWrite, "", kToEnd));
  UserPermissions reader;
  reader.read.Add("a", "b");
  EXPECT_TRUE(reader.Permits(Access::kRead, "a1", ""));
  EXPECT_FALSE(reader.Permits(Access::kWrite, "a1", ""));
}

}  // namespace
}  // namespace etcdpp::auth
