// The parser's YAML tree (policy/yaml_tree.h): the content YAML::LoadAll gives, built from
// yaml-cpp's events into one array.
#include <sstream>

#include <gtest/gtest.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include "policy/yaml_tree.h"

namespace corral::policy {
namespace {

void build(YamlTree& tree, const std::string& text) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  YamlTree::Builder builder(tree);
  while (parser.HandleNextDocument(builder)) {
  }
}

TEST(YamlTree, MapsSequencesScalars) {
  YamlTree tree;
  build(tree, "a: 1\nb: [x, 'y', ~]\nc:\n  d: e\nf:\n");
  ASSERT_EQ(tree.documents().size(), 1u);
  const YamlNode doc = tree.documents()[0];
  ASSERT_TRUE(doc.is_map());
  EXPECT_EQ(doc.size(), 4u);
  EXPECT_EQ(doc["a"].scalar(), "1");
  EXPECT_EQ(doc["b"].size(), 3u);
  EXPECT_EQ(doc["b"][0].scalar(), "x");
  EXPECT_EQ(doc["b"][1].scalar(), "y");
  EXPECT_TRUE(doc["b"][2].is_null());
  EXPECT_FALSE(doc["b"][3].defined());
  EXPECT_EQ(doc["c"]["d"].scalar(), "e");
  EXPECT_TRUE(doc["f"].is_null());
  EXPECT_FALSE(doc["g"].defined());
  EXPECT_EQ(doc.key(1).scalar(), "b");
  EXPECT_TRUE(doc.value(1).is_sequence());
  // Lookups on what is not a map or a sequence find nothing.
  EXPECT_FALSE(doc["a"]["x"].defined());
  EXPECT_FALSE(doc["a"][0].defined());
  EXPECT_FALSE(doc[0].defined());
  EXPECT_FALSE(YamlNode()["x"].defined());
  EXPECT_EQ(doc["a"].size(), 0u);
  EXPECT_EQ(doc["c"].scalar(), "");
}

TEST(YamlTree, MarksAsYamlCppReportsThem) {
  const std::string text = "a:\n  - x\n  - {k: v}\n";
  YamlTree tree;
  build(tree, text);
  const YAML::Node ref = YAML::Load(text);
  const YamlNode doc = tree.documents()[0];
  const auto same = [](const YAML::Mark& a, const YAML::Mark& b) {
    return a.pos == b.pos && a.line == b.line && a.column == b.column;
  };
  EXPECT_TRUE(same(doc.mark(), ref.Mark()));
  EXPECT_TRUE(same(doc["a"].mark(), ref["a"].Mark()));
  EXPECT_TRUE(same(doc["a"][1].mark(), ref["a"][1].Mark()));
  EXPECT_TRUE(same(doc["a"][1]["k"].mark(), ref["a"][1]["k"].Mark()));
  EXPECT_TRUE(doc["nope"].mark().is_null());
}

TEST(YamlTree, DuplicateKeysKeptInOrderFirstWins) {
  YamlTree tree;
  build(tree, "a: 1\na: 2\n");
  const YamlNode doc = tree.documents()[0];
  EXPECT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc["a"].scalar(), "1");
  EXPECT_EQ(doc.value(1).scalar(), "2");
}

TEST(YamlTree, AliasIsTheAnchoredNode) {
  YamlTree tree;
  build(tree, "a: &x {k: v}\nb: *x\nc: &s text\nd: *s\n");
  const YamlNode doc = tree.documents()[0];
  EXPECT_TRUE(doc["a"].is(doc["b"]));
  EXPECT_EQ(doc["b"]["k"].scalar(), "v");
  EXPECT_EQ(doc["d"].scalar(), "text");
  EXPECT_FALSE(doc["a"].is(doc["c"]));
}

TEST(YamlTree, CyclicAlias) {
  YamlTree tree;
  build(tree, "&a [*a, 1]\n");
  const YamlNode doc = tree.documents()[0];
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_TRUE(doc[0].is(doc));
  EXPECT_EQ(doc[0][0][0][1].scalar(), "1");
}

TEST(YamlTree, DocumentsAndTheirAnchors) {
  YamlTree tree;
  build(tree, "a: &x 1\n---\nb: &x 2\nc: *x\n---\n");
  ASSERT_EQ(tree.documents().size(), 3u);
  EXPECT_EQ(tree.documents()[1]["c"].scalar(), "2");
  EXPECT_TRUE(tree.documents()[2].is_null());
}

TEST(YamlTree, EmptyInputHasNoDocument) {
  YamlTree tree;
  build(tree, "# only a comment\n");
  EXPECT_TRUE(tree.documents().empty());
}

} // namespace
} // namespace corral::policy
